using System.Globalization;
using SleapRtc.Bench.Common;
using SleapRtc.TurnLab;

// TurnBench: connect time and upload rate through coturn in the TURN namespace topology, against a direct path in the
// same run. Options: --jobs N (connects per path, default 11), --megabytes M (upload package, default 40).
if (ChildModes.IsChildMode(args)) return await ChildModes.RunAsync(args);

var connects = 11;
var megabytes = 40.0;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--jobs": connects = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--megabytes": megabytes = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
        default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
    }
}

await using var lab = await TurnTopology.StartAsync("turnbench", $"turn:{TurnTopology.Middle}:3478,turn:{TurnTopology.Middle}:3478?transport=tcp");
var small = lab.Package(0.05);
var large = lab.Package(megabytes);
Console.WriteLine($"TURN lab: coturn 4.6 in its own namespace; client and worker cannot reach each other; {connects} connects, {megabytes} MB uploads per path");
Console.WriteLine();
Console.WriteLine("path                          connect p50   connect p90   upload MB/s   pair");

var direct = Measure("direct (client beside worker)", lab.WorkerNamespace);
var relayUdp = Measure("TURN over UDP", lab.ClientNamespace);
var relayTcp = Measure("TURN over TCP (no UDP path)", lab.TcpOnlyNamespace);
Console.WriteLine();
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"upload through TURN / direct: UDP {relayUdp.Upload / direct.Upload:0.00}, TCP {relayTcp.Upload / direct.Upload:0.00}"));
return 0;

(double P50, double Upload) Measure(string name, string netns)
{
    var connectTimes = new List<double>();
    string pair = "";
    using (var client = lab.Client(netns, small, connects))
    {
        for (var i = 0; i < connects; i++)
        {
            var fields = Job(client);
            // The first connect of a process pays for JIT compilation, not for the path.
            if (i > 0) connectTimes.Add(double.Parse(fields[1], CultureInfo.InvariantCulture));
            pair = string.Join(' ', fields.Skip(3));
        }
    }
    var uploads = new List<double>();
    using (var client = lab.Client(netns, large, 3))
        for (var i = 0; i < 3; i++) uploads.Add(double.Parse(Job(client)[2], CultureInfo.InvariantCulture));
    connectTimes.Sort();
    uploads.Sort();
    var p50 = Percentile(connectTimes, 0.5);
    var upload = uploads[uploads.Count / 2];
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{name,-29} {p50,8:0.0} ms   {Percentile(connectTimes, 0.9),8:0.0} ms   {upload,11:0.0}   {pair}"));
    return (p50, upload);
}

static string[] Job(ChildProcess client)
{
    var line = client.WaitFor("JOB", TimeSpan.FromMinutes(3));
    var fields = line.Split(' ');
    if (fields[0] != "Succeeded") throw new InvalidOperationException($"a job failed: {line}\n{client.Transcript()}");
    return fields;
}

static double Percentile(List<double> sorted, double p) =>
    sorted.Count == 0 ? double.NaN : sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
