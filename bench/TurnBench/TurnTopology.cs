using System.Diagnostics;
using System.IO.Compression;
using System.Net;
using SleapRtc.Bench.Common;
using SleapRtc.Interop;

namespace SleapRtc.TurnLab;

/// <summary>
/// The TURN lab (tests/interop/turn-topology.sh): a client and a worker in namespaces that cannot reach each other,
/// both reaching the middle one, where coturn and the signaling server run; a fourth client namespace reaches the
/// middle only through a userspace TCP forwarder (tests/interop/tcp_forward.py), so it has no UDP path at all. The
/// worker serves the stand-in trainer. Needs root; disposal stops every process and deletes the namespaces.
/// </summary>
public sealed class TurnTopology : IAsyncDisposable
{
    public const string Middle = "10.77.1.1";
    public const int SignalingPort = 8077;
    private readonly List<IDisposable> _processes = new();
    private readonly string _root;

    private TurnTopology(string prefix, string root)
    {
        Prefix = prefix;
        _root = root;
    }

    public string Prefix { get; }
    public string ClientNamespace => Prefix + "-cli";
    public string WorkerNamespace => Prefix + "-wrk";
    public string TcpOnlyNamespace => Prefix + "-tcp";
    public string MiddleNamespace => Prefix + "-mid";
    public CoturnServer Coturn { get; private set; } = null!;
    public string ServerUrl => $"ws://{Middle}:{SignalingPort}";
    public string RoomId { get; private set; } = "";
    public string Token { get; private set; } = "";
    public string WorkerId { get; private set; } = "";
    public ChildProcess Worker { get; private set; } = null!;
    public static string RepoRoot { get; } = FindRepoRoot();
    public static string Trainer => Path.Combine(RepoRoot, "tests", "fixtures", "sleap-nn");

    /// <param name="turnUrls">What the signaling server hands out (its -TurnUrl).</param>
    public static async Task<TurnTopology> StartAsync(string prefix, string turnUrls)
    {
        var root = Path.Combine(Path.GetTempPath(), prefix + "-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(root);
        var lab = new TurnTopology(prefix, root);
        try
        {
            await lab.StartAllAsync(turnUrls).ConfigureAwait(false);
            return lab;
        }
        catch
        {
            await lab.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task StartAllAsync(string turnUrls)
    {
        await RunAsync(Path.Combine(RepoRoot, "tests", "interop", "turn-topology.sh"), "up", Prefix).ConfigureAwait(false);
        Coturn = await CoturnServer.StartAsync(new[] { IPAddress.Parse(Middle), IPAddress.Parse("10.77.2.1") }, IPAddress.Parse(Middle), MiddleNamespace,
            TimeSpan.FromSeconds(20)).ConfigureAwait(false);
        // Only TCP leaves the TCP-only namespace: signaling, coturn's TCP and TLS listeners.
        _processes.Add(ChildProcess.Start("tcp forwarder", MiddleNamespace, null, "ready", TimeSpan.FromSeconds(20),
            "/usr/bin/python3", Path.Combine(RepoRoot, "tests", "interop", "tcp_forward.py"), "/var/run/netns/" + TcpOnlyNamespace,
            $"{Middle}:{SignalingPort},{Middle}:{Coturn.Port},{Middle}:{Coturn.TlsPort}"));
        var server = Child("server", MiddleNamespace, "server", "0.0.0.0", SignalingPort.ToString(System.Globalization.CultureInfo.InvariantCulture), turnUrls);
        var ready = server.Ready.Split(' ');
        (RoomId, Token) = (ready[1], ready[2]);
        Worker = Child("worker", WorkerNamespace, "worker", ServerUrl, RoomId, Token, Path.Combine(_root, "worker"), Trainer);
        WorkerId = Worker.Ready;
    }

    public IReadOnlyDictionary<string, string> Environment => new Dictionary<string, string>
    {
        ["TURN_SECRET"] = Coturn.Secret,
        ["SLEAP_RTC_TURN_CA_FILE"] = Coturn.CaCertificatePath,
        ["SLEAP_NN_STANDIN_EPOCH_SECONDS"] = "0.02",
    };

    public ChildProcess Child(string name, string netns, params string[] arguments) => Child(name, netns, null, arguments);

    private ChildProcess Child(string name, string netns, IReadOnlyDictionary<string, string>? overrides, string[] arguments)
    {
        var environment = new Dictionary<string, string>(Environment);
        if (overrides is not null) foreach (var (key, value) in overrides) environment[key] = value;
        var child = ChildProcess.StartProgram(typeof(TurnTopology).Assembly, name, netns, environment, arguments);
        _processes.Add(child);
        return child;
    }

    /// <summary>A client process in <paramref name="netns"/> running <paramref name="jobs"/> jobs on the worker.</summary>
    /// <param name="turnSecret">The secret the client mints its own TURN credentials from (with <paramref name="turnUrl"/>);
    /// null: coturn's.</param>
    public ChildProcess Client(string netns, string package, int jobs, string? turnUrl = null, string? turnSecret = null)
    {
        var output = Path.Combine(_root, "client-" + Guid.NewGuid().ToString("N")[..6]);
        var arguments = new List<string> { "client", ServerUrl, RoomId, Token, package, output, jobs.ToString(System.Globalization.CultureInfo.InvariantCulture), WorkerId };
        if (turnUrl is not null) arguments.Add(turnUrl);
        return Child("client in " + netns, netns, turnSecret is null ? null : new Dictionary<string, string> { ["TURN_SECRET"] = turnSecret }, arguments.ToArray());
    }

    /// <summary>A training package (stand-in trainer, one config) whose labels file has <paramref name="megabytes"/> MB of noise.</summary>
    public string Package(double megabytes)
    {
        var path = Path.Combine(_root, $"labels-{megabytes:0.##}mb.zip");
        if (File.Exists(path)) return path;
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        void Write(string name, byte[] content)
        {
            using var stream = zip.CreateEntry("labels/" + name, CompressionLevel.NoCompression).Open();
            stream.Write(content);
        }
        Write("centroid.json", "{\"trainer_config\": {\"max_epochs\": 1}}"u8.ToArray());
        Write("train-script.sh", "#!/bin/bash\nsleap-nn train --config-name centroid.json --config-dir .\n"u8.ToArray());
        var labels = new byte[Math.Max(16, (int)(megabytes * 1_000_000))];
        new Random(7).NextBytes(labels);
        Write("labels.v001.pkg.slp", labels);
        return path;
    }

    private static async Task RunAsync(string file, params string[] arguments)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardOutput.ReadToEndAsync().ConfigureAwait(false);
        await process.WaitForExitAsync().ConfigureAwait(false);
        if (process.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', arguments)} failed ({process.ExitCode}): {await stderr.ConfigureAwait(false)}");
    }

    private static string FindRepoRoot()
    {
        for (var directory = AppContext.BaseDirectory; directory is not null; directory = Path.GetDirectoryName(directory))
            if (File.Exists(Path.Combine(directory, "SleapRtc.sln"))) return directory;
        throw new DirectoryNotFoundException("the repository root (SleapRtc.sln) is not above " + AppContext.BaseDirectory);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in Enumerable.Reverse(_processes)) process.Dispose();
        if (Coturn is not null) await Coturn.DisposeAsync().ConfigureAwait(false);
        try { await RunAsync(Path.Combine(RepoRoot, "tests", "interop", "turn-topology.sh"), "down", Prefix).ConfigureAwait(false); }
        catch (InvalidOperationException) { }
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
