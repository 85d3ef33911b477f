namespace SleapRtc.Interop;

/// <summary>How to start one kind of interop peer, and how to tell early that it cannot be started.</summary>
public sealed class FixtureCommand
{
    public required string Name { get; init; }
    public required string FileName { get; init; }
    public required IReadOnlyList<string> Arguments { get; init; }
    public string WorkingDirectory { get; init; } = FixtureCatalog.InteropDirectory;
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();
    /// <summary>Files that must exist; a missing one means "not installed".</summary>
    public IReadOnlyList<string> RequiredPaths { get; init; } = Array.Empty<string>();

    public FixtureCommand WithEnvironment(string key, string value)
    {
        var environment = new Dictionary<string, string>(Environment) { [key] = value };
        return new FixtureCommand
        {
            Name = Name, FileName = FileName, Arguments = Arguments, WorkingDirectory = WorkingDirectory,
            Environment = environment, RequiredPaths = RequiredPaths,
        };
    }

    public void EnsureAvailable()
    {
        foreach (var path in RequiredPaths)
            if (!File.Exists(path) && !Directory.Exists(path))
                throw new FixtureUnavailableException(
                    $"interop fixture '{Name}' is not installed: {path} is missing (run .ci/install-deps.sh)");
    }
}

/// <summary>The interop peers in tests/interop, located from the test/bench binaries.</summary>
public static class FixtureCatalog
{
    public static string InteropDirectory { get; } = FindInteropDirectory();

    private static string FindInteropDirectory()
    {
        var fromEnvironment = System.Environment.GetEnvironmentVariable("SLEAPRTC_INTEROP_DIR");
        if (!string.IsNullOrEmpty(fromEnvironment)) return fromEnvironment;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "interop");
            if (File.Exists(Path.Combine(candidate, "peer_core.mjs"))) return candidate;
        }
        return Path.Combine(Directory.GetCurrentDirectory(), "tests", "interop");
    }

    private static string NodeModule(string package) => Path.Combine(InteropDirectory, "node_modules", package);

    private static string FindNode() =>
        new[] { "/usr/bin/node", "/usr/local/bin/node" }.FirstOrDefault(File.Exists) ?? "node";

    /// <summary>A node engine: "wrtc" (@roamhq/wrtc = libwebrtc), "ndc" (node-datachannel = libdatachannel), "werift".</summary>
    public static FixtureCommand Node(string engine) => new()
    {
        Name = engine,
        FileName = FindNode(),
        Arguments = new[] { Path.Combine(InteropDirectory, "peer.mjs"), engine },
        RequiredPaths = new[]
        {
            Path.Combine(InteropDirectory, "peer.mjs"),
            NodeModule(engine switch { "wrtc" => "@roamhq/wrtc", "ndc" => "node-datachannel", _ => engine }),
        },
    };

    /// <summary>Debian's python3-aiortc; only /usr/bin/python3 can import it.</summary>
    public static FixtureCommand Aiortc() => new()
    {
        Name = "aiortc",
        FileName = "/usr/bin/python3",
        Arguments = new[] { Path.Combine(InteropDirectory, "aiortc_peer.py") },
        RequiredPaths = new[] { "/usr/bin/python3", "/usr/lib/python3/dist-packages/aiortc" },
    };

    /// <summary>Headless Chromium driving a page served on 127.0.0.1 inside the namespace.</summary>
    public static FixtureCommand Chromium() => new()
    {
        Name = "chromium",
        FileName = FindNode(),
        Arguments = new[] { Path.Combine(InteropDirectory, "chromium_peer.mjs") },
        RequiredPaths = new[] { "/usr/bin/chromium", NodeModule("ws"), Path.Combine(InteropDirectory, "chromium_peer.mjs") },
    };

    /// <summary>Our managed stack behind IPeerConnectionFactory, as a separate process (OursPeer).</summary>
    public static FixtureCommand Ours(IReadOnlyDictionary<string, string>? environment = null)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "OursPeer.dll");
        return new FixtureCommand
        {
            Name = "ours",
            FileName = "dotnet",
            Arguments = new[] { dll },
            RequiredPaths = new[] { dll },
            Environment = environment ?? new Dictionary<string, string>(),
        };
    }
}
