using System.Text.Json.Nodes;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Logging;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Client;
using SleapRtc.WebRtc;
using SleapRtc.Worker.Jobs;

namespace SleapRtc.Worker;

// Offers, the status lifecycle (available -> reserved -> busy -> available) and progress publishing.
public sealed partial class WorkerHost
{
    private JobProgress? _pendingProgress;
    private long _lastProgressPublishTicks;
    private int _progressPublishScheduled;

    private async Task HandleOfferObservedAsync(SdpMessage offer)
    {
        try
        {
            await HandleOfferAsync(offer).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Nothing a client does may take the worker down; log and serve the next one.
            _log.Write(LogLevel.Error, Component, $"offer from {offer.Sender} failed: {e.GetType().Name}: {e.Message}");
        }
    }

    private async Task HandleOfferAsync(SdpMessage offer)
    {
        if (_stopping.IsCancellationRequested) return;
        var jobDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // Atomic with the check: a second offer racing this one sees "reserved".
        if (!TryChangeStatus(WorkerStatus.Reserved, from => from == WorkerStatus.Available, out var refusedStatus,
                whileLocked: () => _currentJob = jobDone.Task, reason: $"Accepting connection from {offer.Sender} (status: available)"))
        {
            Note($"Rejecting connection from {offer.Sender} - worker is {refusedStatus}");
            await _signaling.SendBusyRejectionAsync(offer.Sender, refusedStatus, _stopping.Token).ConfigureAwait(false);
            return;
        }

        // Published, not waited for: the answer must not wait a signaling round trip (it is on the path from a queued
        // ticket's assignment to its upload). Our server reserved this worker when it relayed the offer; for a classic
        // server the publish still says "reserved" to discovery, and this worker refuses other offers on its own status.
        // The metadata lock is taken before this call returns, so a later "busy" or "available" publishes after it.
        var reservedPublished = PublishStatusAsync(WorkerStatus.Reserved);
        try
        {
            await ServeClientAsync(offer).ConfigureAwait(false);
        }
        finally
        {
            await reservedPublished.ConfigureAwait(false);
            lock (_gate) _session = null;
            // A partial upload kept for its client keeps the worker reserved for that job (WorkerHost.Resume).
            if (!HoldsParkedUpload) await ClearJobAndBecomeAvailableAsync().ConfigureAwait(false);
            jobDone.TrySetResult();
        }
    }

    /// <param name="resuming">The offer resumes the upload this worker keeps: the session serves that job only.</param>
    private async Task ServeClientAsync(SdpMessage offer, bool resuming = false)
    {
        var connection = NewPeerConnection();
        Task? closing = null;
        try
        {
            (_, closing) = await ServeClientAsync(offer, connection, resuming).ConfigureAwait(false);
        }
        finally
        {
            // The job is over: the channel's graceful close and the connection's teardown go on in the background, so
            // the worker is available to its next client at once (a pipeline offers the next job the moment the results
            // arrive), and a vanished client, which cannot take part in a graceful close, delays nothing.
            _ = TearDownAsync(closing, connection);
        }
    }

    private static async Task TearDownAsync(Task? closing, IPeerConnection connection)
    {
        try
        {
            if (closing is not null) await closing.ConfigureAwait(false);
        }
        finally
        {
            try { await connection.DisposeAsync().ConfigureAwait(false); }
            catch (Exception e) when (e is IOException or InvalidOperationException or ObjectDisposedException or OperationCanceledException) { }
        }
    }

    /// <returns>Whether the client vanished, and the channel's graceful close still under way (null when there is none).</returns>
    private async Task<(bool ClientGone, Task? Closing)> ServeClientAsync(SdpMessage offer, IPeerConnection connection, bool resuming)
    {
        var channelOpened = new TaskCompletionSource<ChannelGate>(TaskCreationOptions.RunContinuationsAsynchronously);
        WorkerJobSession? served = null;
        // The gate is created inside the event so it hears the client's first message (the proof, or a classic command).
        connection.DataChannelOpened += channel => channelOpened.TrySetResult(NewGate(channel, connection));
        connection.StateChanged += state =>
        {
            if (state is PeerConnectionState.Failed or PeerConnectionState.Closed)
            {
                // The transport's reason (e.g. a TURN server refusing this worker's credentials) goes into the log line.
                channelOpened.TrySetException(new IOException($"the peer connection {state.ToString().ToLowerInvariant()}"
                    + (connection.Error is { } reason ? ": " + reason.Message : "")));
                // This connection's job, whichever it is (a space serves several at once).
                Volatile.Read(ref served)?.PeerLost();
            }
        };

        // The server says when the client left before the channel opened (killed mid-negotiation): no need to
        // wait out the reservation timeout for a connection that cannot come.
        void OnSignalingError(SignalingError error)
        {
            if (error.Code == ErrorCodes.PeerLeft && error.Sender == offer.Sender
                || error.Code == ErrorCodes.PeerNotFound && error.InReplyTo == MessageTypes.Answer && error.Raw.GetString("target_peer_id") == offer.Sender)
                channelOpened.TrySetException(new IOException("the client left the signaling server"));
        }

        using var reservation = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        reservation.CancelAfter(_options.ReservationTimeout);
        ChannelGate gate;
        _signaling.ErrorReceived += OnSignalingError;
        try
        {
            var answer = await connection.AcceptOfferAsync(offer.Sdp, reservation.Token).ConfigureAwait(false);
            await _signaling.SendAnswerAsync(offer.Sender, answer, reservation.Token).ConfigureAwait(false);
            gate = await channelOpened.Task.WaitAsync(reservation.Token).ConfigureAwait(false);
            await gate.Decision.WaitAsync(reservation.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SignalingException)
        {
            if (channelOpened.Task.IsCompletedSuccessfully) channelOpened.Task.Result.Detach();
            Note($"Client {offer.Sender} did not open a data channel ({(e is OperationCanceledException ? "timed out" : e.Message)}); available again");
            return (true, null);
        }
        finally
        {
            _signaling.ErrorReceived -= OnSignalingError;
        }

        var channel = gate.Channel;
        if (!await AdmitAsync(gate, offer.Sender).ConfigureAwait(false)) return (false, null);
        // Which path carries the job (host, srflx or a TURN relay), for the log reader wondering why it is slow.
        Note($"Client {offer.Sender} connected over {connection.SelectedCandidatePair?.ToString() ?? "an unknown path"}");
        var session = NewSession(channel, gate.RecordStatus, offer.Sender, resuming);
        Volatile.Write(ref served, session);
        gate.Release();

        if (_spaceQueue is null) lock (_gate) _session = session;
        else _spaceRequests[session] = 0;
        if (_stopping.IsCancellationRequested) session.Stop();

        var outcome = await session.RunAsync(CancellationToken.None).ConfigureAwait(false);
        _spaceRequests.TryRemove(session, out _);
        Note($"Job {outcome.JobId} from {offer.Sender} ended: {outcome.End}{(outcome.Error is null ? "" : " (" + outcome.Error + ")")}");
        JobCompleted?.Invoke(outcome);
        // A vanished client cannot take part in a graceful close; waiting for it would only delay "available".
        if (outcome.End == WorkerJobEnd.ClientGone) return (true, null);
        return (false, CloseGracefullyAsync(channel));
    }

    private static async Task CloseGracefullyAsync(IDataChannel channel)
    {
        try { await channel.CloseAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false); }
        catch (Exception e) when (e is TimeoutException or IOException or InvalidOperationException or ObjectDisposedException) { }
    }

    /// <summary>A gate on a client's new channel: the proof with this room's token over this connection's certificates.</summary>
    private ChannelGate NewGate(IDataChannel channel, IPeerConnection connection) =>
        new(channel, Session.Token, connection.CertificateFingerprints, _options.RequireChannelAuth);

    /// <summary>
    /// Logs the gate's decision; for a refused client, waits briefly for the refusal to leave and says false.
    /// <paramref name="verifiedOnly"/>: what our extensions alone serve (collections) is refused to classic peers too.
    /// </summary>
    private async Task<bool> AdmitAsync(ChannelGate gate, string client, bool verifiedOnly = false)
    {
        switch (gate.Decision.Result)
        {
            case ChannelGateDecision.Verified:
                Note($"Client {client}: channel authenticated (room token proven over this connection's DTLS certificates)");
                return true;
            case ChannelGateDecision.Classic when !verifiedOnly:
                Note($"Client {client}: classic peer, channel not authenticated (allowed; Start-SleapWorker -RequireChannelAuth refuses such clients)");
                return true;
            default:
                Warn($"Refused client {client}: {gate.RefusalReason ?? "a classic peer cannot collect results"}; nothing was served");
                gate.Detach();
                try { await gate.Channel.CloseAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false); }
                catch (Exception e) when (e is TimeoutException or IOException or InvalidOperationException or ObjectDisposedException) { }
                return false;
        }
    }

    /// <param name="client">The offer's sender: the client a partial upload of this session is kept for.</param>
    /// <param name="resuming">The offer resumes the upload this worker keeps: the session serves that job only.</param>
    private WorkerJobSession NewSession(IDataChannel channel, string? channelAuth, string client, bool resuming = false)
    {
        var session = new WorkerJobSession(channel, SpaceJobOptions(new WorkerJobOptions
        {
            ChannelAuth = channelAuth,
            JobsDirectory = _jobsDirectory,
            TrainerPath = _trainerPath,
            Results = _results,
            IsJobIdInUse = IsJobIdInUse,
            DataRoot = _options.DataRoot,
            StopGrace = _options.StopGrace,
            TrainerPriority = _options.TrainerPriority,
            KeepAliveInterval = _options.KeepAliveInterval,
            IdleTimeout = _options.ClientIdleTimeout,
            HeartbeatInterval = _options.HeartbeatInterval,
            HeartbeatTimeout = _options.HeartbeatTimeout,
            PackageLimits = new PackageLimits { MaxCompressionRatio = _options.MaxPackageRatio, MaxUnpackedBytes = _options.MaxUnpackedSize },
            // A space serves many requests at once and reserves itself for none: its uploads are not kept for a resume.
            ParkUpload = _spaceQueue is null && _options.PartialUploadRetention > TimeSpan.Zero ? ParkUpload : null,
            ClientPeerId = client,
            ClaimParkedUpload = _spaceQueue is null ? (jobId, upload) => ClaimParkedUpload(client, jobId, upload) : null,
            PartialUploadRetention = _options.PartialUploadRetention,
            ResumeOnly = resuming,
        }), _log);
        session.JobStarted += () => _ = Task.Run(() => BecomeBusyAsync(session));
        session.LogLine += line => LogLine?.Invoke(line);
        session.ProgressChanged += OnJobProgress;
        WireJobReports(session);
        return session;
    }

    private async Task BecomeBusyAsync(WorkerJobSession session)
    {
        if (!TryChangeStatus(WorkerStatus.Busy, from => from == WorkerStatus.Reserved && _session == session, out _)) return;
        await PublishAsync(new JsonObject { [PeerMetadataKeys.Status] = WorkerStatus.Busy, [PeerMetadataKeys.Job] = ProgressNode(session.Progress) }).ConfigureAwait(false);
    }

    private async Task ClearJobAndBecomeAvailableAsync()
    {
        if (_stopping.IsCancellationRequested) return;
        TryChangeStatus(WorkerStatus.Available, _ => true, out _, whileLocked: () => _pendingProgress = null);
        // Publishing "available" also ends the server's reservation hold for the last client.
        await PublishAsync(new JsonObject { [PeerMetadataKeys.Status] = WorkerStatus.Available, [PeerMetadataKeys.Job] = null }).ConfigureAwait(false);
    }

    private Task PublishStatusAsync(string status) => PublishAsync(new JsonObject { [PeerMetadataKeys.Status] = status });

    /// <summary>
    /// The one place the status changes. Under the lock: the check against the current status, the change, its
    /// mirror on <see cref="Session"/> and <paramref name="whileLocked"/> happen together, so racing offers and a job
    /// ending cannot interleave; then, outside the lock, the reason is logged and <see cref="StatusChanged"/> raised.
    /// </summary>
    /// <param name="allowedFrom">Whether the change may happen from the current status (checked under the lock).</param>
    /// <param name="current">The status before the call (what refused the change when it returns false).</param>
    private bool TryChangeStatus(string to, Func<string, bool> allowedFrom, out string current, Action? whileLocked = null, string? reason = null)
    {
        lock (_gate)
        {
            current = _status;
            if (!allowedFrom(current)) return false;
            _status = to;
            Session.Status = to;
            whileLocked?.Invoke();
        }
        if (reason is not null) Note(reason);
        StatusChanged?.Invoke(to);
        return true;
    }

    private async Task PublishAsync(JsonObject properties)
    {
        await _metadataLock.WaitAsync().ConfigureAwait(false);
        try
        {
            await _signaling.UpdateMetadataAsync(new JsonObject { [PeerMetadataKeys.Properties] = properties }, _stopping.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SignalingException or OperationCanceledException or InvalidOperationException)
        {
            // Offline for now: the signaling client re-registers with the merged metadata when it reconnects.
            _log.Write(LogLevel.Debug, Component, "metadata update deferred: " + e.Message);
        }
        finally
        {
            _metadataLock.Release();
        }
    }

    private void OnJobProgress(JobProgress progress)
    {
        ProgressChanged?.Invoke(progress);
        lock (_gate) _pendingProgress = progress;
        // At most one publish per interval (the monitor and Get-SleapWorker read it; the server must not be flooded).
        if (Interlocked.Exchange(ref _progressPublishScheduled, 1) == 1) return;
        var wait = _options.ProgressPublishInterval.TotalMilliseconds - (Environment.TickCount64 - Interlocked.Read(ref _lastProgressPublishTicks));
        _ = Task.Run(async () =>
        {
            if (wait > 0) await Task.Delay(TimeSpan.FromMilliseconds(wait)).ConfigureAwait(false);
            JsonNode? node;
            string status;
            lock (_gate)
            {
                node = _pendingProgress is null ? null : ProgressNode(_pendingProgress);
                status = _status;
            }
            Interlocked.Exchange(ref _lastProgressPublishTicks, Environment.TickCount64);
            Interlocked.Exchange(ref _progressPublishScheduled, 0);
            if (node is not null && status == WorkerStatus.Busy) await PublishAsync(new JsonObject { [PeerMetadataKeys.Job] = node }).ConfigureAwait(false);
        });
    }

    private async Task RepublishAfterReconnectAsync()
    {
        Note("Reconnected to the signaling server");
        string status;
        lock (_gate) status = _status;
        await PublishStatusAsync(status).ConfigureAwait(false);
        // The server may have marked the running job lost meanwhile; its record comes back with this report.
        _reporter.ReportActiveAgain();
    }

    private static JsonNode? ProgressNode(JobProgress progress) => JsonNode.Parse(JobExtensions.SerializeProgress(progress));

    private void Note(string line)
    {
        _log.Write(LogLevel.Information, Component, line);
        LogLine?.Invoke(line);
    }

    private void Warn(string line)
    {
        _log.Write(LogLevel.Warning, Component, line);
        LogLine?.Invoke(line);
    }
}
