using System.Globalization;
using SleapRtc.Bench;
using SleapRtc.Interop;

// WebRTC data-channel benchmark: bulk transfer (64 KiB messages, back-pressure, sender and receiver in
// separate processes inside a private network namespace), raw UDP ceiling, connect time p50, sender RSS; and the
// same transfer through emulated wide-area paths (each peer in its own namespace, joined by the impairment relay).
//   dotnet run -c Release --project bench/WebRtcBench -- [--size MiB] [--runs N] [--pairs a>b,c>d] [--skip-connect]
//       [--profile loopback,wan40,wan10] [--wan-size MiB] [--wan-pairs a>b,c>d]
var sizeMiB = 1024L;
var wanSizeMiB = 256L;
var profiles = new List<string> { "loopback" };
var trace = false;
var wanPairs = new List<string> { "ours>ours", "wrtc>wrtc", "ndc>ndc", "ours>wrtc", "wrtc>ours" };
var aiortcSizeMiB = 64L; // aiortc moves ~1–10 MB/s here: 1 GiB would take many minutes; its rate does not depend on size
var connectRuns = 50;
var pairs = new List<string> { "ours>ours", "wrtc>wrtc", "ndc>ndc", "aiortc>aiortc", "ours>wrtc", "wrtc>ours" };
var connectKinds = new List<string> { "ours", "wrtc", "ndc", "aiortc" };
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--size": sizeMiB = long.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--aiortc-size": aiortcSizeMiB = long.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--runs": connectRuns = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--pairs": pairs = args[++i].Split(',', StringSplitOptions.RemoveEmptyEntries).Where(p => p.Contains('>')).ToList(); break;
        case "--connect": connectKinds = args[++i].Split(',', StringSplitOptions.RemoveEmptyEntries).ToList(); break;
        case "--skip-connect": connectRuns = 0; break;
        case "--profile": profiles = args[++i].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList(); break;
        case "--wan-size": wanSizeMiB = long.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--trace": trace = true; break;
        case "--wan-pairs": wanPairs = args[++i].Split(',', StringSplitOptions.RemoveEmptyEntries).Where(p => p.Contains('>')).ToList(); break;
        default:
            Console.Error.WriteLine("usage: WebRtcBench [--size MiB (default 1024)] [--aiortc-size MiB (default 64)] [--runs N (default 50)] " +
                "[--pairs ours>ours,wrtc>wrtc,...] [--connect ours,wrtc,...] [--skip-connect] " +
                "[--profile loopback,wan40,wan10 (default loopback)] [--wan-size MiB (default 256)] [--wan-pairs ours>ours,...] " +
                "[--trace (our peers print SCTP counters each second; shown after each WAN transfer)]");
            return 2;
    }
}

var wanProfiles = new List<WanProfile>();
foreach (var name in profiles.Where(p => p != "loopback"))
{
    try { wanProfiles.Add(WanProfile.Parse(name)); }
    catch (ArgumentException error) { Console.Error.WriteLine(error.Message); return 2; }
}
var loopback = profiles.Contains("loopback");
var bytes = sizeMiB * 1048576;
Console.WriteLine($"WebRtcBench: {(loopback ? $"{sizeMiB} MiB per loopback transfer" : "")}" +
    $"{(loopback && wanProfiles.Count > 0 ? ", " : "")}{(wanProfiles.Count > 0 ? $"{wanSizeMiB} MiB per WAN transfer" : "")}, 64 KiB messages, high/low water 1 MiB/256 KiB, " +
    $"{Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
Console.WriteLine("MB = 10^6 bytes; throughput = bytes / (send command -> last byte reported by the receiver).");
Console.WriteLine($"load average at start: {File.ReadAllText("/proc/loadavg").Trim()} (other work on the box skews every figure)");

if (loopback)
{
    var (udpMBps, udpLost) = UdpCeiling.Measure(Math.Min(bytes, 512L << 20));
    Console.WriteLine($"raw loopback UDP, 1200-byte datagrams: {udpMBps:0} MB/s ({udpLost} lost)");
}

FixtureCommand Fixture(string kind) => kind switch
{
    "ours" => trace ? FixtureCatalog.Ours().WithEnvironment("PEER_TRACE", "1") : FixtureCatalog.Ours(),
    "aiortc" => FixtureCatalog.Aiortc(),
    "chromium" => FixtureCatalog.Chromium(),
    _ => FixtureCatalog.Node(kind),
};

var throughput = new Dictionary<string, double>();
void Ratio(string ours, string reference)
{
    if (throughput.TryGetValue(ours, out var a) && throughput.TryGetValue(reference, out var b) && b > 0)
        Console.WriteLine($"ratio {ours} / {reference}: {a / b:0.00}x");
}
// An interop pair against the slower of its two native pairs (the floor it must not fall below).
void InteropRatio(string interop)
{
    var ends = interop.Split('>');
    if (throughput.TryGetValue(interop, out var a) && throughput.TryGetValue($"{ends[0]}>{ends[0]}", out var first)
        && throughput.TryGetValue($"{ends[1]}>{ends[1]}", out var second) && Math.Min(first, second) > 0)
        Console.WriteLine($"ratio {interop} / slower native pair: {a / Math.Min(first, second):0.00}x");
}
if (loopback) await RunLoopbackPairsAsync();
foreach (var profile in wanProfiles) await RunWanPairsAsync(profile);
if (!loopback) return 0;

async Task RunWanPairsAsync(WanProfile profile)
{
    throughput.Clear();
    var wanBytes = wanSizeMiB * 1048576;
    Console.WriteLine();
    Console.WriteLine($"WAN profile {profile}; {wanSizeMiB} MiB per transfer; each peer in its own namespace, joined by the relay");
    Console.WriteLine("| sender -> receiver | MB/s | seconds | sender peak RSS MB | relay toward receiver | relay CPU s | note |");
    Console.WriteLine("|---|---|---|---|---|---|---|");
    // One seed for every pair: the relay's per-direction random sequences then lose the same packets (by position).
    foreach (var pairName in wanPairs)
    {
        var parts = pairName.Split('>');
        try
        {
            await using var path = await RelayedPair.ConnectAsync(Fixture(parts[0]), Fixture(parts[1]), profile.EachWay, profile.EachWay, seed: 20261202);
            var cpuBefore = path.Relay.CpuTime;
            var outcome = await PeerPair.TransferAsync(path.Pair.Offerer, path.Pair.Answerer, wanBytes,
                TimeSpan.FromSeconds(120 + wanBytes / 250_000), hash: false, dataSource: "pool");
            var relayCpu = path.Relay.CpuTime - cpuBefore;
            if (trace) Console.Error.WriteLine($"{pairName} sender:{path.Pair.Offerer.StderrTail}\nreceiver:{path.Pair.Answerer.StderrTail}\nrelay toward receiver: {path.Relay.Stats(towardB: true)}\nrelay toward sender: {path.Relay.Stats(towardB: false)}");
            var toward = path.Relay.Stats(towardB: true);
            var note = outcome.ReceivedBytes != wanBytes ? $"received {outcome.ReceivedBytes} of {wanBytes}" : "";
            throughput[pairName] = outcome.MBps;
            Console.WriteLine($"| {parts[0]} -> {parts[1]} | {outcome.MBps:0.0} | {outcome.Elapsed.TotalSeconds:0.0} | " +
                $"{outcome.SenderPeakRssMB?.ToString("0", CultureInfo.InvariantCulture) ?? "?"} | " +
                $"lost {toward.Lost}, tail-dropped {toward.TailDropped} of {toward.Received}; late {toward.MeanLatenessMs:0.00} ms avg | " +
                $"{relayCpu.TotalSeconds:0.0} | {note} |");
        }
        catch (Exception error) when (error is FixtureUnavailableException or FixtureFailedException)
        {
            Console.WriteLine($"| {parts[0]} -> {parts[1]} | n/a | | | | | {FirstLine(error.Message)} |");
        }
    }
    Console.WriteLine();
    Console.WriteLine($"profile {profile.Name}:");
    Ratio("ours>ours", "wrtc>wrtc");
    Ratio("ours>ours", "ndc>ndc");
    InteropRatio("ours>wrtc");
    InteropRatio("wrtc>ours");
}

async Task RunLoopbackPairsAsync()
{
    Console.WriteLine();
    Console.WriteLine("| sender -> receiver | MB/s | seconds | sender peak RSS MB | sender CPU s | receiver CPU s | note |");
    Console.WriteLine("|---|---|---|---|---|---|---|");
    foreach (var pairName in pairs)
    {
        var parts = pairName.Split('>');
        try
        {
            await using var pair = await PeerPair.StartAsync(Fixture(parts[0]), Fixture(parts[1]));
            await pair.ConnectAsync();
            var pairBytes = parts.Contains("aiortc") ? Math.Min(bytes, aiortcSizeMiB * 1048576) : bytes;
            var outcome = await PeerPair.TransferAsync(pair.Offerer, pair.Answerer, pairBytes,
                TimeSpan.FromSeconds(60 + pairBytes / 500_000), hash: false, dataSource: "pool");
            var note = outcome.ReceivedBytes != pairBytes ? $"received {outcome.ReceivedBytes} of {pairBytes}"
                : pairBytes != bytes ? $"{pairBytes / 1048576} MiB (--aiortc-size)" : "";
            throughput[pairName] = outcome.MBps;
            Console.WriteLine($"| {parts[0]} -> {parts[1]} | {outcome.MBps:0.0} | {outcome.Elapsed.TotalSeconds:0.0} | " +
                $"{outcome.SenderPeakRssMB?.ToString("0", CultureInfo.InvariantCulture) ?? "?"} | {Seconds(outcome.SenderCpu)} | {Seconds(outcome.ReceiverCpu)} | {note} |");
        }
        catch (Exception error) when (error is FixtureUnavailableException or FixtureFailedException)
        {
            Console.WriteLine($"| {parts[0]} -> {parts[1]} | n/a | | | | | {FirstLine(error.Message)} |");
        }
    }

    Console.WriteLine();
    Ratio("ours>ours", "wrtc>wrtc");
    Ratio("ours>ours", "ndc>ndc");
    Ratio("ours>ours", "aiortc>aiortc");
    Ratio("ours>wrtc", "wrtc>wrtc");
    Ratio("wrtc>ours", "wrtc>wrtc");
}

if (connectRuns > 0)
{
    Console.WriteLine();
    Console.WriteLine($"connect time (offer requested -> channel open on both sides), {connectRuns} runs, warm processes (offerer -> answerer):");
    Console.WriteLine("| pair | p50 ms | p90 ms | min ms |");
    Console.WriteLine("|---|---|---|---|");
    foreach (var kind in connectKinds)
    {
        // "ours" means ours<>ours; "ours<>chromium" names offerer and answerer.
        var ends = kind.Split("<>");
        var (offererKind, answererKind) = (ends[0], ends.Length > 1 ? ends[1] : ends[0]);
        try
        {
            await using var pair = await PeerPair.StartAsync(Fixture(offererKind), Fixture(answererKind));
            var samples = new List<double>();
            for (var run = 0; run < connectRuns + 1; run++)
            {
                await pair.ConnectAsync();
                if (run > 0) samples.Add(pair.ConnectTime.TotalMilliseconds); // run 0 warms up JIT/caches
                await pair.CloseFromAsync(pair.Offerer);
                // Tear the answerer's connection down too, so closing it is not timed in the next run.
                pair.Answerer.Send(new { cmd = "close" });
                await pair.Answerer.WaitForAsync("pcClosed", PeerPair.StepTimeout);
            }
            samples.Sort();
            Console.WriteLine($"| {offererKind} -> {answererKind} | {Percentile(samples, 0.5):0.0} | {Percentile(samples, 0.9):0.0} | {samples[0]:0.0} |");
        }
        catch (Exception error) when (error is FixtureUnavailableException or FixtureFailedException)
        {
            Console.WriteLine($"| {offererKind} -> {answererKind} | n/a | | {FirstLine(error.Message)} |");
        }
    }
}
return 0;

static double Percentile(List<double> sorted, double p) => sorted[(int)Math.Min(sorted.Count - 1, Math.Floor(p * sorted.Count))];
static string Seconds(TimeSpan? cpu) => cpu?.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture) ?? "?";
static string FirstLine(string text) => text.Split('\n')[0].Replace('|', '/');
