using System.Text.Json.Nodes;
using SleapRtc.Client.Credentials;
using SleapRtc.Client.Discovery;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Client;
using SleapRtc.WebRtc;

namespace SleapRtc.Client.Jobs;

/// <summary>How <see cref="WorkerChannel.OpenAsync"/> connects.</summary>
public sealed class WorkerChannelOptions
{
    public required IPeerConnectionFactory PeerConnectionFactory { get; init; }
    /// <summary>Template for the peer connection (loopback, local addresses); STUN servers come from the signaling server.</summary>
    public PeerConnectionOptions? PeerConnection { get; init; }
    public ClientConnectionOptions Connection { get; init; } = new();
    /// <summary>Offer to open channel: longer than this and the worker is unreachable.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>A transfer cut off mid-file resumes over a new connection this many times (collections, Receive-SleapJob).</summary>
    public TransferRetryPolicy Retry { get; init; } = TransferRetryPolicy.Default;
    /// <summary>A collection that hears nothing from the worker this long counts the connection as lost.</summary>
    public TimeSpan IdleTimeout { get; init; } = JobCollection.DefaultIdleTimeout;
}

/// <summary>
/// A data channel to one worker of a room, with the room connection and peer connection it lives on. The offer may
/// carry a purpose (our extension key "purpose" on the offer message): "collect" reaches a worker that is busy
/// training, because neither the server nor the worker reserves it for a collection.
/// </summary>
public sealed class WorkerChannel : IAsyncDisposable
{
    private readonly ClientRoomConnection _room;
    private readonly IPeerConnection _peer;

    private WorkerChannel(ClientRoomConnection room, IPeerConnection peer, IDataChannel channel, string workerId)
    {
        _room = room;
        _peer = peer;
        Channel = channel;
        WorkerId = workerId;
    }

    public IDataChannel Channel { get; }
    public string WorkerId { get; }

    /// <summary>Joins the room as a client, offers to <paramref name="workerId"/> (with <paramref name="purpose"/> when given) and opens the channel.</summary>
    /// <exception cref="WorkerBusyException">The worker (or the server for it) refused the offer.</exception>
    /// <exception cref="WorkerNotFoundException">No such worker in the room.</exception>
    /// <exception cref="WorkerUnreachableException">No channel within the connect timeout.</exception>
    public static async Task<WorkerChannel> OpenAsync(ResolvedRoom room, string workerId, string? purpose, WorkerChannelOptions options, CancellationToken cancellationToken)
    {
        var connection = await ClientRoomConnection.ConnectAsync(room, options.Connection, cancellationToken).ConfigureAwait(false);
        IPeerConnection? peer = null;
        try
        {
            peer = CreatePeer(connection, options.PeerConnectionFactory, options.PeerConnection);
            // Only our workers take these offers (collections): the channel is always authenticated.
            var (channel, _) = await OfferAsync(connection, peer, workerId, purpose, authenticate: true, options.ConnectTimeout, cancellationToken).ConfigureAwait(false);
            return new WorkerChannel(connection, peer, channel, workerId);
        }
        catch
        {
            if (peer is not null) await peer.DisposeAsync().ConfigureAwait(false);
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Closes the channel (a clean close: the worker takes it as "received"), then the connections.</summary>
    public async ValueTask DisposeAsync()
    {
        try { await Channel.CloseAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false); }
        catch (Exception e) when (e is TimeoutException or IOException or InvalidOperationException or ObjectDisposedException) { }
        await _peer.DisposeAsync().ConfigureAwait(false);
        await _room.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Whether the channel to <paramref name="worker"/> must be authenticated: it advertises the proof, or the session
    /// string this connection came from was printed by that worker at a version that makes it (so a server that hides
    /// the advertisement cannot talk the client into the classic, unverified way).
    /// </summary>
    internal static bool MustAuthenticate(ClientRoomConnection connection, WorkerInfo worker) =>
        JobExtensions.AdvertisesChannelAuth(worker.Properties)
        || connection.Room.WorkerPeerId == worker.PeerId && connection.Room.WorkerExtensionVersion >= JobExtensions.ChannelAuthVersion;

    /// <summary>A peer connection for the room: the caller's template (loopback, local addresses), the server's STUN and TURN unless the template names some.</summary>
    internal static IPeerConnection CreatePeer(ClientRoomConnection connection, IPeerConnectionFactory factory, PeerConnectionOptions? template)
    {
        template ??= new PeerConnectionOptions();
        return factory.Create(new PeerConnectionOptions
        {
            StunServers = template.StunServers.Count > 0 ? template.StunServers : IceServerList.StunUrls(connection.IceServers),
            IceServers = template.IceServers.Count > 0 ? template.IceServers : connection.TurnServers,
            TurnTrustedCertificates = template.TurnTrustedCertificates ?? WebRtc.IceServer.LoadTrustedCertificates(),
            RelayOnly = template.RelayOnly,
            IncludeLoopback = template.IncludeLoopback,
            LocalAddresses = template.LocalAddresses,
            MaxMessageSize = template.MaxMessageSize,
        });
    }

    /// <summary>
    /// Offer, wait for the answer or the worker's refusal, open the channel and, with <paramref name="authenticate"/> (a
    /// worker that advertises it, see <see cref="JobExtensions.AdvertisesChannelAuth"/>), prove the room token over it
    /// (<see cref="ChannelProof"/>); all within <paramref name="connectTimeout"/>. Returns the channel and the time from
    /// sending the offer to the channel being open (and authenticated).
    /// </summary>
    /// <exception cref="ChannelAuthenticationException">The channel could not be authenticated; nothing was sent on it.</exception>
    internal static async Task<(IDataChannel Channel, TimeSpan ConnectTime)> OfferAsync(ClientRoomConnection connection, IPeerConnection peer, string workerId,
        string? purpose, bool authenticate, TimeSpan connectTimeout, CancellationToken cancellationToken)
    {
        var signaling = connection.Signaling;
        var roomId = connection.Room.RoomId;
        var answer = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnAnswer(SdpMessage m) { if (m.Sender == workerId) answer.TrySetResult(m.Sdp); }
        void OnError(SignalingError e)
        {
            if (e.IsWorkerBusy && (e.Sender == workerId || e.Sender is null))
                answer.TrySetException(new WorkerBusyException(workerId, roomId, e.CurrentStatus ?? WorkerStatus.Busy, e.Message ?? "Worker is busy."));
            else if (e.Code == ErrorCodes.PeerNotFound && e.InReplyTo is null or MessageTypes.Offer)
                answer.TrySetException(new WorkerNotFoundException(workerId, roomId));
        }
        signaling.AnswerReceived += OnAnswer;
        signaling.ErrorReceived += OnError;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(connectTimeout);
        try
        {
            var offer = await peer.CreateOfferAsync(timeout.Token).ConfigureAwait(false);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            await signaling.SendOfferAsync(workerId, offer, purpose, timeout.Token).ConfigureAwait(false);
            var answerSdp = await answer.Task.WaitAsync(timeout.Token).ConfigureAwait(false);
            await peer.AcceptAnswerAsync(answerSdp, timeout.Token).ConfigureAwait(false);
            var channel = await peer.OpenDataChannelAsync(TrainingSubmission.ChannelLabel, timeout.Token).ConfigureAwait(false);
            if (authenticate) await ChannelProof.RunAsync(channel, peer, connection.Room.Token, workerId, timeout.Token).ConfigureAwait(false);
            return (channel, clock.Elapsed);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new WorkerUnreachableException(workerId, $"no connection within {connectTimeout.TotalSeconds:0} s" +
                (answer.Task.IsCompletedSuccessfully ? " (the worker answered; the peer-to-peer path failed)" : " (the worker never answered)"));
        }
        catch (SignalingException e)
        {
            throw new SignalingUnavailableException(signaling.Endpoints.ToString(), e.Message, e);
        }
        catch (WebRtc.Dtls.DtlsFingerprintMismatchException e)
        {
            throw new WorkerUnreachableException(workerId, "its certificate does not match the fingerprint it sent through the signaling server, " +
                "so the encrypted connection was refused (something between the two machines may be interfering)", e);
        }
        catch (Exception e) when (e is IOException or TimeoutException && !cancellationToken.IsCancellationRequested)
        {
            // The transport's own failure (ICE found no path, the DTLS handshake failed or timed out, SCTP did not
            // come up): the user gets the worker and a stable error id, not a bare IOException.
            throw new WorkerUnreachableException(workerId, "the peer-to-peer connection failed (" + e.Message.TrimEnd('.') + ")", e);
        }
        finally
        {
            signaling.AnswerReceived -= OnAnswer;
            signaling.ErrorReceived -= OnError;
        }
    }
}
