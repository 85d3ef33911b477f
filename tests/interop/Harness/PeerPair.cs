using System.Text.Json.Nodes;
using System.Diagnostics;

namespace SleapRtc.Interop;

public sealed record TransferOutcome(long SentBytes, long ReceivedBytes, string? SentSha256, string? ReceivedSha256,
    TimeSpan Elapsed, double? SenderPeakRssMB, TimeSpan? SenderCpu = null, TimeSpan? ReceiverCpu = null,
    long? SenderSegmentedDatagrams = null)
{
    public double MBps => ReceivedBytes / 1e6 / Elapsed.TotalSeconds;
}

public sealed record TextOutcome(int Count, bool InOrder, int FirstMismatch, string? Sample);

/// <summary>
/// Two fixture processes (optionally inside one private network namespace) wired offer → answer by relaying
/// their SDP lines; then transfers, text runs and an orderly close, each with a bounded wait.
/// </summary>
public sealed class PeerPair : IAsyncDisposable
{
    public static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(30);

    private NetworkNamespace? _network;
    private NetworkNamespace? _answererNetwork;

    public FixtureProcess Offerer { get; }
    public FixtureProcess Answerer { get; }
    /// <summary>Offer requested → both channel ends open, as seen by the test.</summary>
    public TimeSpan ConnectTime { get; private set; }

    private PeerPair(FixtureProcess offerer, FixtureProcess answerer, NetworkNamespace? network, NetworkNamespace? answererNetwork)
    {
        Offerer = offerer;
        Answerer = answerer;
        _network = network;
        _answererNetwork = answererNetwork;
    }

    /// <summary>The offerer's namespace (shared with the answerer unless started with separate namespaces).</summary>
    public NetworkNamespace? OffererNetwork => _network;
    /// <summary>The answerer's namespace.</summary>
    public NetworkNamespace? AnswererNetwork => _answererNetwork ?? _network;

    /// <summary>
    /// Starts both fixtures (inside a fresh namespace when <paramref name="isolated"/>), then connects them. With
    /// <paramref name="separateNamespaces"/> each gets its own one-address namespace and no path joins them: only an
    /// impairment relay bridging the two (<see cref="LossyUdpRelay"/>) lets them talk.
    /// </summary>
    public static async Task<PeerPair> StartAsync(FixtureCommand offerer, FixtureCommand answerer, bool isolated = true,
        TimeSpan? readyTimeout = null, bool separateNamespaces = false)
    {
        var ready = readyTimeout ?? TimeSpan.FromSeconds(30);
        var network = isolated || separateNamespaces
            ? await NetworkNamespace.CreateAsync(TimeSpan.FromSeconds(10), oneAddress: separateNamespaces).ConfigureAwait(false) : null;
        NetworkNamespace? answererNetwork = null;
        FixtureProcess? first = null;
        try
        {
            if (separateNamespaces)
                answererNetwork = await NetworkNamespace.CreateAsync(TimeSpan.FromSeconds(10), oneAddress: true).ConfigureAwait(false);
            var starts = new[]
            {
                FixtureProcess.StartAsync($"{offerer.Name} (offerer)", offerer, network, ready),
                FixtureProcess.StartAsync($"{answerer.Name} (answerer)", answerer, answererNetwork ?? network, ready),
            };
            try { await Task.WhenAll(starts).ConfigureAwait(false); }
            catch
            {
                foreach (var started in starts.Where(t => t.IsCompletedSuccessfully)) await started.Result.DisposeAsync().ConfigureAwait(false);
                throw;
            }
            first = starts[0].Result;
            var pair = new PeerPair(first, starts[1].Result, network, answererNetwork);
            network = answererNetwork = null;
            return pair;
        }
        finally
        {
            if (network is not null) await network.DisposeAsync().ConfigureAwait(false);
            if (answererNetwork is not null) await answererNetwork.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Relays offer and answer (optionally rewritten, e.g. to route through a relay) and waits for both opens.</summary>
    public async Task ConnectAsync(Func<string, string>? rewriteOffer = null, Func<string, string>? rewriteAnswer = null)
    {
        var clock = Stopwatch.StartNew();
        Offerer.Send(new { cmd = "start" });
        var offer = (string?)(await Offerer.WaitForAsync("sdp", StepTimeout).ConfigureAwait(false))["sdp"] ?? "";
        Answerer.Send(new { cmd = "sdp", type = "offer", sdp = rewriteOffer is null ? offer : rewriteOffer(offer) });
        var answer = (string?)(await Answerer.WaitForAsync("sdp", StepTimeout).ConfigureAwait(false))["sdp"] ?? "";
        Offerer.Send(new { cmd = "sdp", type = "answer", sdp = rewriteAnswer is null ? answer : rewriteAnswer(answer) });
        await Task.WhenAll(Offerer.WaitForAsync("open", StepTimeout), Answerer.WaitForAsync("open", StepTimeout)).ConfigureAwait(false);
        ConnectTime = clock.Elapsed;
    }

    /// <summary>Sends <paramref name="bytes"/> from one side to the other (64 KiB messages, back-pressure) and returns both reports.</summary>
    public static async Task<TransferOutcome> TransferAsync(FixtureProcess source, FixtureProcess sink, long bytes,
        TimeSpan timeout, bool hash = true, string dataSource = "random")
    {
        sink.Send(new { cmd = "expect", bytes, hash });
        await sink.WaitForAsync("expecting", StepTimeout).ConfigureAwait(false);
        // CPU (user + system) each process spends on the transfer: unlike MB/s it hardly moves with the box's load.
        var (sourceCpuBefore, sinkCpuBefore) = (source.CpuTime, sink.CpuTime);
        var clock = Stopwatch.StartNew();
        source.Send(new { cmd = "send", bytes, hash, source = dataSource });
        var sentTask = source.WaitForAsync("sent", timeout);
        var receivedTask = sink.WaitForAsync("received", timeout);
        JsonObject received;
        try
        {
            // A sender that fails (its association aborted, say) reports it at once rather than as a silent receiver.
            if (await Task.WhenAny(receivedTask, sentTask).ConfigureAwait(false) == sentTask && sentTask.IsFaulted)
                await sentTask.ConfigureAwait(false);
            received = await receivedTask.ConfigureAwait(false);
        }
        catch (FixtureFailedException error)
        {
            // The sender's side of the story (its trace lines, errors) belongs in the same message.
            throw new FixtureFailedException(error.Message + source.StderrTail);
        }
        var elapsed = clock.Elapsed;
        var sent = await sentTask.ConfigureAwait(false);
        return new TransferOutcome((long?)sent["bytes"] ?? -1, (long?)received["bytes"] ?? -1,
            (string?)sent["sha256"], (string?)received["sha256"], elapsed, (double?)sent["peakRssMB"],
            source.CpuTime - sourceCpuBefore, sink.CpuTime - sinkCpuBefore, (long?)sent["segmentedDatagrams"]);
    }

    public static async Task<TextOutcome> TextsAsync(FixtureProcess source, FixtureProcess sink, int count, TimeSpan timeout)
    {
        sink.Send(new { cmd = "expectText", count, prefix = "msg" });
        source.Send(new { cmd = "sendText", count, prefix = "msg" });
        var result = await sink.WaitForAsync("textReceived", timeout).ConfigureAwait(false);
        await source.WaitForAsync("textSent", timeout).ConfigureAwait(false);
        return new TextOutcome((int?)result["count"] ?? -1, (bool?)result["inOrder"] ?? false,
            (int?)result["firstMismatch"] ?? -1, (string?)result["sample"]);
    }

    /// <summary>Closes the channel from <paramref name="closer"/>; returns how each side saw it ("local"/"remote").</summary>
    public async Task<(string Closer, string Other)> CloseFromAsync(FixtureProcess closer)
    {
        var other = ReferenceEquals(closer, Offerer) ? Answerer : Offerer;
        closer.Send(new { cmd = "close" });
        var closerSaw = await closer.WaitForAsync("closed", StepTimeout).ConfigureAwait(false);
        var otherSaw = await other.WaitForAsync("closed", StepTimeout).ConfigureAwait(false);
        await closer.WaitForAsync("pcClosed", StepTimeout).ConfigureAwait(false);
        return ((string?)closerSaw["by"] ?? "?", (string?)otherSaw["by"] ?? "?");
    }


    public async ValueTask DisposeAsync()
    {
        await Offerer.DisposeAsync().ConfigureAwait(false);
        await Answerer.DisposeAsync().ConfigureAwait(false);
        if (_network is not null) await _network.DisposeAsync().ConfigureAwait(false);
        if (_answererNetwork is not null) await _answererNetwork.DisposeAsync().ConfigureAwait(false);
        _network = _answererNetwork = null;
    }
}
