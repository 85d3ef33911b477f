using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using SleapRtc.Client.Credentials;
using SleapRtc.Client.Discovery;
using SleapRtc.Client.Jobs;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Client;
using SleapRtc.WebRtc;
using SleapRtc.WebRtc.Stun;
using SleapRtc.WebRtc.Turn;

namespace SleapRtc.Client.Diagnostics;

/// <summary>How <see cref="ConnectionTest.RunAsync"/> connects.</summary>
public sealed class ConnectionTestOptions
{
    public required IPeerConnectionFactory PeerConnectionFactory { get; init; }
    /// <summary>Template for the peer connection (loopback, local addresses); STUN servers come from the signaling server.</summary>
    public PeerConnectionOptions? PeerConnection { get; init; }
    public ClientConnectionOptions Connection { get; init; } = new();
    /// <summary>How long a STUN server has to answer.</summary>
    public TimeSpan StunTimeout { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>Offer to open (and authenticated) channel to the worker.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(20);
    /// <summary>Messages sent to the worker and echoed; the round trip is their median.</summary>
    public int Pings { get; init; } = 5;
}

/// <summary>
/// Test-SleapConnection: checks, in order, what a job needs from this machine's network and reports each step in a
/// <see cref="ConnectionTestResult"/>. A failed step says why and what to check; later steps that need it are skipped.
/// <list type="number">
/// <item>Server: registration in the room, and the quickest of three GET /health round trips.</item>
/// <item>Stun: a Binding request to each STUN server the server hands out, from each local address: the addresses the
/// world sees this machine at (the server's own STUN answers on its port).</item>
/// <item>Turn: an allocation with the server's TURN credentials (see <see cref="TestTurnAsync"/>).</item>
/// <item>Worker: a data channel to the worker (offer purpose "probe": nothing is reserved), the room-token proof, a few
/// echoed messages, and the ICE candidate pairs: which one carried it (host, srflx, relay) and how the others ended.</item>
/// </list>
/// </summary>
public static class ConnectionTest
{
    public const string ServerStep = "Server";
    public const string StunStep = "Stun";
    public const string TurnStep = "Turn";
    public const string WorkerStep = "Worker";

    public static async Task<ConnectionTestResult> RunAsync(ResolvedRoom room, string? workerId, ConnectionTestOptions options, CancellationToken cancellationToken)
    {
        var result = new ConnectionTestResult { Server = room.Server ?? "", RoomId = room.RoomId, WorkerId = workerId };
        var steps = new List<ConnectionTestStep>();
        var clock = Stopwatch.StartNew();
        ClientRoomConnection connection;
        try
        {
            connection = await ClientRoomConnection.ConnectAsync(room, options.Connection, cancellationToken).ConfigureAwait(false);
        }
        catch (SleapRtcException e)
        {
            steps.Add(Step(ServerStep, ConnectionTestStatus.Failed, clock, e.Message + " " + e.RecommendedAction));
            steps.Add(Skip(StunStep, "the signaling server was not reached"));
            steps.Add(Skip(TurnStep, "the signaling server was not reached"));
            steps.Add(Skip(WorkerStep, "the signaling server was not reached"));
            result.Steps = steps.ToArray();
            return result;
        }
        await using (connection.ConfigureAwait(false))
        {
            result.Server = connection.Server;
            steps.Add(await TestServerAsync(connection, result, cancellationToken).ConfigureAwait(false));
            steps.Add(await TestStunAsync(connection, options, result, cancellationToken).ConfigureAwait(false));
            steps.Add(await TestTurnAsync(connection, options, result, cancellationToken).ConfigureAwait(false));
            steps.Add(workerId is null
                ? Skip(WorkerStep, "no worker given (-WorkerId, or pipe a worker from Get-SleapWorker)")
                : await TestWorkerAsync(connection, workerId, options, result, cancellationToken).ConfigureAwait(false));
        }
        result.Steps = steps.ToArray();
        return result;
    }

    private static async Task<ConnectionTestStep> TestServerAsync(ClientRoomConnection connection, ConnectionTestResult result, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        TimeSpan? best = null;
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var one = Stopwatch.StartNew();
                await connection.Signaling.GetHealthAsync(cancellationToken).ConfigureAwait(false);
                if (best is null || one.Elapsed < best) best = one.Elapsed;
            }
        }
        catch (Exception e) when (e is SignalingException or HttpRequestException or IOException)
        {
            return Step(ServerStep, ConnectionTestStatus.Failed, clock,
                $"joined room {connection.Room.RoomId}, but GET /health failed ({e.Message}); a proxy in front of the server may block HTTP.");
        }
        result.ServerLatency = best;
        return Step(ServerStep, ConnectionTestStatus.Passed, clock,
            $"joined room {connection.Room.RoomId} as {connection.Registration.PeerId}; latency {Milliseconds(best!.Value)} (GET /health).");
    }

    private static async Task<ConnectionTestStep> TestStunAsync(ClientRoomConnection connection, ConnectionTestOptions options, ConnectionTestResult result,
        CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var urls = IceServerList.StunUrls(connection.IceServers);
        if (urls.Count == 0) return Step(StunStep, ConnectionTestStatus.NotConfigured, clock, "the server hands out no STUN server; peers behind NAT can only meet on a shared network.");
        var seen = new List<string>();
        var notes = new List<string>();
        // The template's addresses (tests in network namespaces), else the one the route to each server leaves from.
        IReadOnlyList<IPAddress?> locals = options.PeerConnection?.LocalAddresses is { Count: > 0 } given ? given.ToArray() : new IPAddress?[] { null };
        foreach (var url in urls)
        {
            if (await StunBindingQuery.ResolveAsync(url, cancellationToken).ConfigureAwait(false) is not { } server)
            {
                notes.Add($"{url} does not resolve");
                continue;
            }
            var answered = false;
            foreach (var local in locals.Where(a => a is null || IPAddress.IsLoopback(a) == IPAddress.IsLoopback(server.Address)))
            {
                if (await StunBindingQuery.QueryAsync(server, local, options.StunTimeout, cancellationToken).ConfigureAwait(false) is not { } answer) continue;
                answered = true;
                var text = answer.Mapped.ToString();
                if (!seen.Contains(text)) seen.Add(text);
                notes.Add(answer.BehindNat ? $"{url} sees {text} for {answer.Local.Address} (NAT)" : $"{url} sees {text} (no NAT)");
            }
            if (!answered) notes.Add($"no answer from {url} within {options.StunTimeout.TotalSeconds:0.#} s (is UDP to port {server.Port} blocked?)");
        }
        result.ReflexiveAddresses = seen.ToArray();
        return Step(StunStep, seen.Count > 0 ? ConnectionTestStatus.Passed : ConnectionTestStatus.Failed, clock, string.Join("; ", notes) + ".");
    }

    /// <summary>
    /// The TURN step: one allocation on every TURN URL the server hands out, with this peer's credentials from
    /// registered_auth, released at once: the relayed address each granted, or why not (credentials refused or expired,
    /// UDP blocked, TLS certificate not trusted). "Not configured" when the server hands out no TURN server.
    /// </summary>
    private static async Task<ConnectionTestStep> TestTurnAsync(ClientRoomConnection connection, ConnectionTestOptions options, ConnectionTestResult result,
        CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var servers = connection.TurnServers;
        if (servers.Count == 0)
            return Step(TurnStep, ConnectionTestStatus.NotConfigured, clock,
                "the server hands out no TURN server (Start-SleapSignalingServer -TurnUrl ... -TurnSecret ...); without one, peers that cannot reach each other directly cannot connect.");
        var trusted = options.PeerConnection?.TurnTrustedCertificates ?? IceServer.LoadTrustedCertificates();
        var probes = await TurnProbe.ProbeAsync(servers, new TurnClientOptions { TrustedCertificates = trusted }, cancellationToken).ConfigureAwait(false);
        result.RelayedAddresses = probes.Where(p => p.Succeeded).Select(p => p.RelayedAddress!).ToArray();
        var detail = string.Join("; ", probes.Select(p => p.Succeeded
            ? $"{p.Url} relays at {p.RelayedAddress} ({Milliseconds(p.Elapsed)})"
            : $"{p.Url} failed: {p.Error}")) + ".";
        // One working relay is enough for a job; the others are reported so the lab can fix them.
        return Step(TurnStep, probes.Any(p => p.Succeeded) ? ConnectionTestStatus.Passed : ConnectionTestStatus.Failed, clock, detail);
    }

    private static async Task<ConnectionTestStep> TestWorkerAsync(ClientRoomConnection connection, string workerId, ConnectionTestOptions options,
        ConnectionTestResult result, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var workers = await connection.DiscoverWorkersAsync(new WorkerFilter { Status = null }, cancellationToken).ConfigureAwait(false);
        if (workers.FirstOrDefault(w => w.PeerId == workerId) is not { } worker)
            return Step(WorkerStep, ConnectionTestStatus.Failed, clock, $"worker {workerId} is not in room {connection.Room.RoomId} (Get-SleapWorker -Status * lists them).");
        var ours = WorkerChannel.MustAuthenticate(connection, worker);
        var peer = WorkerChannel.CreatePeer(connection, options.PeerConnectionFactory, options.PeerConnection);
        try
        {
            IDataChannel channel;
            TimeSpan connectTime;
            try
            {
                // Only our workers know the probe purpose; a classic one would take it for a job offer and reserve itself.
                (channel, connectTime) = await WorkerChannel.OfferAsync(connection, peer, workerId, ours ? JobQueueMessages.ProbePurpose : null,
                    authenticate: ours, options.ConnectTimeout, cancellationToken).ConfigureAwait(false);
            }
            catch (SleapRtcException e)
            {
                return Step(WorkerStep, ConnectionTestStatus.Failed, clock, e.Message + PairSummary(peer.CandidatePairs, null));
            }
            result.ChannelAuth = ChannelAuthStatus.Describe(ours ? ChannelAuthStatus.Verified : ChannelAuthStatus.Unverified);
            var pairs = peer.CandidatePairs;
            var selected = pairs.FirstOrDefault(p => p.Selected);
            result.Path = selected?.Pair.Path;
            TimeSpan? roundTrip = ours ? await PingAsync(channel, options.Pings, cancellationToken).ConfigureAwait(false) : null;
            result.RoundTrip = roundTrip;
            try { await channel.CloseAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false); }
            catch (Exception e) when (e is TimeoutException or IOException or InvalidOperationException or ObjectDisposedException) { }
            var timing = roundTrip is { } rtt ? $"round trip {Milliseconds(rtt)}" : "channel open (a classic worker echoes nothing)";
            var auth = ours ? "channel authenticated" : "classic worker, channel not authenticated";
            if (ours && roundTrip is null)
                return Step(WorkerStep, ConnectionTestStatus.Failed, clock, $"the channel opened in {Milliseconds(connectTime)} but the worker echoed nothing within 5 s.");
            return Step(WorkerStep, ConnectionTestStatus.Passed, clock,
                $"{timing} over {selected?.Pair.Path ?? "an unknown"} path ({selected?.Pair.ToString() ?? "no pair selected"}), opened in {Milliseconds(connectTime)}; {auth}." + PairSummary(pairs, selected));
        }
        finally
        {
            await peer.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The median of <paramref name="count"/> echoed pings; null when the worker echoed none within 5 s.</summary>
    private static async Task<TimeSpan?> PingAsync(IDataChannel channel, int count, CancellationToken cancellationToken)
    {
        var times = new List<TimeSpan>();
        for (var i = 0; i < count; i++)
        {
            var echoed = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            var sequence = i.ToString(CultureInfo.InvariantCulture);
            void OnMessage(DataChannelMessage m)
            {
                if (m.IsText && JobMessages.Parse(m.Text!) is (JobMessages.Pong, var args) && args.FirstOrDefault() == sequence) echoed.TrySetResult(true);
            }
            channel.MessageReceived += OnMessage;
            try
            {
                var clock = Stopwatch.StartNew();
                channel.Send(JobMessages.Format(JobMessages.Ping, sequence));
                await echoed.Task.WaitAsync(TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
                times.Add(clock.Elapsed);
            }
            catch (TimeoutException) { break; }
            finally { channel.MessageReceived -= OnMessage; }
        }
        if (times.Count == 0) return null;
        times.Sort();
        return times[times.Count / 2];
    }

    /// <summary>The pairs other than the one that carried the connection, and how they ended ("why the others failed").</summary>
    private static string PairSummary(IReadOnlyList<IceCandidatePairReport> pairs, IceCandidatePairReport? selected)
    {
        var others = pairs.Where(p => !ReferenceEquals(p, selected)).ToList();
        if (selected is not null) return others.Count == 0 ? "" : " Other pairs: " + string.Join("; ", others.Select(Describe)) + ".";
        return pairs.Count == 0 ? " No candidate pair formed (the worker's answer offered no address this machine can use)."
            : " Pairs tried: " + string.Join("; ", pairs.Select(Describe)) + ".";
    }

    private static string Describe(IceCandidatePairReport report) => $"{report.Pair.Path} pair {report.Pair} " + report.State switch
    {
        "Failed" => "failed (no answer to the connectivity checks: a firewall or NAT drops them)",
        "Succeeded" => "also worked",
        "Waiting" => "not tried (a better pair won first)",
        "InProgress" => "still checking when a better pair won",
        var other => other.ToLowerInvariant(),
    };

    private static string Milliseconds(TimeSpan time) => time.TotalMilliseconds.ToString(time.TotalMilliseconds < 10 ? "0.0" : "0", CultureInfo.InvariantCulture) + " ms";

    private static ConnectionTestStep Step(string name, string status, Stopwatch clock, string detail) =>
        new() { Name = name, Status = status, Duration = clock.Elapsed, Detail = detail };

    private static ConnectionTestStep Skip(string name, string why) => new() { Name = name, Status = ConnectionTestStatus.Skipped, Detail = why };
}
