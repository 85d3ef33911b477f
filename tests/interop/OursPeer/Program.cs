using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using SleapRtc.Interop;
using SleapRtc.WebRtc;

// One managed peer driven by JSON lines (protocol: tests/interop/peer_core.mjs). Commands run in arrival order.
var output = Console.Out;
var outputGate = new object();
void Emit(object evt)
{
    var line = JsonSerializer.Serialize(evt);
    lock (outputGate) { output.WriteLine(line); output.Flush(); }
}

IPeerConnectionFactory factory;
try
{
    factory = ManagedStack.CreateFactory();
}
catch (Exception error)
{
    Emit(new { ev = "error", cmd = "load", message = error.Message });
    return 2;
}

var peer = new ManagedFixturePeer(factory, ManagedStack.OptionsFromEnvironment(), Emit);
Emit(new { ev = "ready", engine = "ours", version = typeof(IPeerConnectionFactory).Assembly.GetName().Version?.ToString(), pid = Environment.ProcessId });
while (Console.In.ReadLine() is { } line)
{
    if (string.IsNullOrWhiteSpace(line)) continue;
    JsonObject? command;
    try { command = JsonNode.Parse(line) as JsonObject; }
    catch (JsonException) { Emit(new { ev = "error", cmd = "parse", message = "bad JSON" }); continue; }
    if (command is null) continue;
    if (!await peer.HandleAsync(command).ConfigureAwait(false)) break;
}
await peer.DisposeAsync().ConfigureAwait(false);
return 0;

internal sealed class ManagedFixturePeer(IPeerConnectionFactory factory, PeerConnectionOptions options, Action<object> emit) : IAsyncDisposable
{
    private const long DefaultHighWater = 1 << 20;
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(30);

    private IPeerConnection? _pc;
    private IDataChannel? _dc;
    private bool _echo;
    private volatile bool _closingLocally;
    private TaskCompletionSource? _closed;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private double _t0;
    private readonly object _rxGate = new();
    private IncrementalHash? _rxHash;
    private long _rxBytes, _rxMessages;
    private double _rxFirst, _rxLast;
    private (long Bytes, bool Hash)? _byteTarget;
    private Timer? _receiveTrace;
    private readonly List<string> _texts = new();
    private (int Count, string Prefix)? _textTarget;

    private double Now => _clock.Elapsed.TotalMilliseconds;
    private static readonly bool Tracing = Environment.GetEnvironmentVariable("PEER_TRACE") == "1";

    public async Task<bool> HandleAsync(JsonObject command)
    {
        var name = (string?)command["cmd"];
        if (Tracing) Console.Error.WriteLine($"trace: command {name} at {Now:0} ms");
        try
        {
            switch (name)
            {
                case "start": await StartOfferAsync().ConfigureAwait(false); break;
                case "sdp":
                    if ((string?)command["type"] == "offer") await AcceptOfferAsync((string)command["sdp"]!).ConfigureAwait(false);
                    else await AcceptAnswerAsync((string)command["sdp"]!).ConfigureAwait(false);
                    break;
                case "send": await SendBytesAsync(command).ConfigureAwait(false); break;
                case "expect":
                    lock (_rxGate) _byteTarget = ((long)command["bytes"]!, (bool?)command["hash"] ?? true);
                    if (Tracing && _dc is { } receiving)
                    {
                        _receiveTrace?.Dispose();
                        _receiveTrace = new Timer(_ => Console.Error.WriteLine(
                            $"trace: received {Interlocked.Read(ref _rxBytes)} {SctpStatistics(receiving)}"), null, 1000, 1000);
                    }
                    emit(new { ev = "expecting", bytes = (long)command["bytes"]! });
                    CheckBytes();
                    break;
                case "sendText": await SendTextsAsync(command).ConfigureAwait(false); break;
                case "expectText":
                    lock (_rxGate) _textTarget = ((int)command["count"]!, (string?)command["prefix"] ?? "msg");
                    CheckTexts();
                    break;
                case "echo": _echo = (bool?)command["on"] ?? false; emit(new { ev = "echo", on = _echo }); break;
                case "close": await CloseAsync().ConfigureAwait(false); break;
                case "exit": return false;
                default: throw new InvalidOperationException($"unknown command {name}");
            }
        }
        catch (Exception error)
        {
            emit(new { ev = "error", cmd = name, message = error.ToString() });
        }
        return true;
    }

    private async Task<IPeerConnection> NewPeerConnectionAsync()
    {
        if (_pc is not null) await _pc.DisposeAsync().ConfigureAwait(false);
        _dc = null;
        _closingLocally = false;
        lock (_rxGate) { ResetReceive(); _texts.Clear(); }
        _t0 = Now;
        _pc = factory.Create(options);
        return _pc;
    }

    private async Task StartOfferAsync()
    {
        var pc = await NewPeerConnectionAsync().ConfigureAwait(false);
        using var cts = new CancellationTokenSource(StepTimeout);
        var offer = await pc.CreateOfferAsync(cts.Token).ConfigureAwait(false);
        emit(new { ev = "sdp", type = "offer", sdp = offer });
    }

    private async Task AcceptAnswerAsync(string sdp)
    {
        var pc = _pc ?? throw new InvalidOperationException("answer without an offer");
        using var cts = new CancellationTokenSource(StepTimeout);
        await pc.AcceptAnswerAsync(sdp, cts.Token).ConfigureAwait(false);
        Attach(await pc.OpenDataChannelAsync("data", cts.Token).ConfigureAwait(false));
    }

    private async Task AcceptOfferAsync(string sdp)
    {
        var pc = await NewPeerConnectionAsync().ConfigureAwait(false);
        pc.DataChannelOpened += Attach;
        using var cts = new CancellationTokenSource(StepTimeout);
        var answer = await pc.AcceptOfferAsync(sdp, cts.Token).ConfigureAwait(false);
        emit(new { ev = "sdp", type = "answer", sdp = answer });
    }

    private void Attach(IDataChannel channel)
    {
        if (ReferenceEquals(_dc, channel)) return;
        channel.MessageReceived += OnMessage;
        channel.Closed += error =>
        {
            emit(new { ev = "closed", by = _closingLocally ? "local" : "remote", error = error?.Message });
            _closed?.TrySetResult();
        };
        _dc = channel;
        emit(new { ev = "open", label = channel.Label, id = (int)channel.StreamId, ms = Math.Round(Now - _t0) });
    }

    private void ResetReceive()
    {
        _rxHash?.Dispose();
        _rxHash = null;
        _rxBytes = _rxMessages = 0;
    }

    private void OnMessage(DataChannelMessage message)
    {
        if (message.IsText)
        {
            if (_echo) _dc?.Send(message.Text!);
            lock (_rxGate) _texts.Add(message.Text!);
            CheckTexts();
            return;
        }
        var bytes = message.Binary.Span;
        if (_echo) _dc?.Send(bytes);
        lock (_rxGate)
        {
            var now = Now;
            if (_rxMessages == 0)
            {
                _rxFirst = now;
                _rxHash = _byteTarget is { Hash: false } ? null : IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            }
            _rxHash?.AppendData(bytes);
            _rxBytes += bytes.Length;
            _rxMessages++;
            _rxLast = now;
        }
        CheckBytes();
    }

    private void CheckBytes()
    {
        lock (_rxGate)
        {
            if (_byteTarget is not { } target || _rxBytes < target.Bytes) return;
            var sha = _rxHash is null ? null : Convert.ToHexStringLower(_rxHash.GetHashAndReset());
            var ms = _rxLast - _rxFirst;
            emit(new { ev = "received", bytes = _rxBytes, messages = _rxMessages, sha256 = sha, ms = Math.Round(ms),
                MBps = ms > 0 ? Math.Round(_rxBytes / 1e3 / ms, 2) : (double?)null });
            _byteTarget = null;
            _receiveTrace?.Dispose();
            ResetReceive();
        }
    }

    private void CheckTexts()
    {
        lock (_rxGate)
        {
            if (_textTarget is not { } target || _texts.Count < target.Count) return;
            var got = _texts.GetRange(0, target.Count);
            _texts.RemoveRange(0, target.Count);
            _textTarget = null;
            var mismatch = -1;
            for (var i = 0; i < got.Count && mismatch < 0; i++)
                if (got[i] != $"{target.Prefix} {i}") mismatch = i;
            emit(new { ev = "textReceived", count = got.Count, inOrder = mismatch < 0, firstMismatch = mismatch,
                sample = mismatch < 0 ? null : got[mismatch] });
        }
    }

    private IDataChannel RequireOpen() =>
        _dc is { State: DataChannelState.Open } channel ? channel : throw new InvalidOperationException("data channel is not open");

    private static async Task DrainAsync(IDataChannel channel, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (channel.BufferedAmount > 0)
        {
            if (channel.State != DataChannelState.Open) throw new InvalidOperationException($"channel {channel.State} before its queue drained");
            if (clock.Elapsed > timeout) throw new TimeoutException($"send queue not drained within {timeout.TotalSeconds} s");
            await Task.Delay(1).ConfigureAwait(false);
        }
    }

    private async Task SendBytesAsync(JsonObject command)
    {
        var channel = RequireOpen();
        var total = (long)command["bytes"]!;
        var chunk = (int?)command["chunk"] ?? 65536;
        var high = (long?)command["high"] ?? DefaultHighWater;
        using var hash = (bool?)command["hash"] == false ? null : IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[][]? pool = (string?)command["source"] == "pool"
            ? Enumerable.Range(0, 16).Select(_ => RandomNumberGenerator.GetBytes(chunk)).ToArray()
            : null;
        var fresh = new byte[chunk];
        // Only a backstop (the harness has its own timeouts): a minute plus the whole transfer at 50 kB/s, since
        // through the lossy relay the congestion window sits at a few packets (~0.2 MB/s). A bound of 1 MB/s
        // cancelled 20 MB relay runs at 80 s, which looked like an association freeze at ~16 MB.
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60 + total / 50_000));
        var started = Now;
        long sent = 0;
        var index = 0;
        // PEER_TRACE=1: one progress line a second on stderr (the harness shows stderr tails on failure).
        using var trace = Tracing
            ? new Timer(_ => Console.Error.WriteLine($"trace: sent {Interlocked.Read(ref sent)} buffered {channel.BufferedAmount} state {channel.State} {SctpStatistics(channel)}"), null, 1000, 1000)
            : null;
        while (sent < total)
        {
            var size = (int)Math.Min(chunk, total - sent);
            ReadOnlyMemory<byte> message;
            if (pool is not null) message = pool[index % pool.Length].AsMemory(0, size);
            else
            {
                RandomNumberGenerator.Fill(fresh.AsSpan(0, size));
                message = fresh.AsMemory(0, size);
            }
            hash?.AppendData(message.Span);
            await channel.SendAsync(message, high, cts.Token).ConfigureAwait(false);
            Interlocked.Add(ref sent, size);
            index++;
        }
        await DrainAsync(channel, TimeSpan.FromSeconds(60)).ConfigureAwait(false);
        emit(new { ev = "sent", bytes = sent, messages = index, sha256 = hash is null ? null : Convert.ToHexStringLower(hash.GetHashAndReset()),
            ms = Math.Round(Now - started), peakRssMB = PeakRssMB(), segmentedDatagrams = SegmentedDatagrams(_pc) });
    }

    private async Task SendTextsAsync(JsonObject command)
    {
        var channel = RequireOpen();
        var count = (int)command["count"]!;
        var prefix = (string?)command["prefix"] ?? "msg";
        using var cts = new CancellationTokenSource(StepTimeout);
        for (var i = 0; i < count; i++)
        {
            while (channel.BufferedAmount > DefaultHighWater)
            {
                if (channel.State != DataChannelState.Open) throw new InvalidOperationException($"channel {channel.State} while sending");
                await Task.Delay(1, cts.Token).ConfigureAwait(false);
            }
            channel.Send($"{prefix} {i}");
        }
        await DrainAsync(channel, StepTimeout).ConfigureAwait(false);
        emit(new { ev = "textSent", count });
    }

    private async Task CloseAsync()
    {
        if (_dc is { } channel && channel.State != DataChannelState.Closed)
        {
            _closingLocally = true;
            _closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using var cts = new CancellationTokenSource(StepTimeout);
            await channel.CloseAsync(cts.Token).ConfigureAwait(false);
            await _closed.Task.WaitAsync(StepTimeout).ConfigureAwait(false);
        }
        if (_pc is not null) await _pc.DisposeAsync().ConfigureAwait(false);
        _pc = null;
        emit(new { ev = "pcClosed" });
    }

    // Diagnostics only: the association's counters are not on the public seam, so read them by reflection.
    private static string SctpStatistics(IDataChannel channel)
    {
        var association = channel.GetType().GetField("_association", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)?.GetValue(channel);
        return association?.GetType().GetMethod("GetStatistics")?.Invoke(association, null)?.ToString() ?? "";
    }

    // Diagnostics only: datagrams that left in segmented (Linux UDP GSO) sends, read by reflection like the SCTP counters.
    private static long? SegmentedDatagrams(IPeerConnection? connection)
    {
        const System.Reflection.BindingFlags Internal = System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance;
        var ice = connection?.GetType().GetProperty("IceAgent", Internal)?.GetValue(connection);
        return ice?.GetType().GetProperty("SegmentedDatagramsSent", Internal)?.GetValue(ice) as long?;
    }

    private static double? PeakRssMB()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return Math.Round(long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), System.Globalization.CultureInfo.InvariantCulture) / 1024.0, 1);
        }
        catch (IOException) { }
        return null;
    }

    public async ValueTask DisposeAsync()
    {
        if (_pc is not null) await _pc.DisposeAsync().ConfigureAwait(false);
        _rxHash?.Dispose();
    }
}
