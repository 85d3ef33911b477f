using System.Reflection;

namespace SleapRtc.Signaling.Monitor;

/// <summary>The monitor page and its scripts, styles and icon, embedded in the assembly (no files to deploy, no build step).</summary>
internal static class MonitorAssets
{
    internal sealed record Asset(string ContentType, byte[] Content);

    private static readonly Lazy<Dictionary<string, Asset>> ByPath = new(Load);

    /// <summary>The asset served at that path, or null when the path is not one of the page's.</summary>
    public static Asset? Find(string path) => ByPath.Value.TryGetValue(path, out var asset) ? asset : null;

    private static Dictionary<string, Asset> Load()
    {
        var page = new Asset("text/html; charset=utf-8", Read("monitor.html"));
        return new Dictionary<string, Asset>(StringComparer.Ordinal)
        {
            ["/"] = page,
            ["/monitor"] = page,
            ["/monitor/"] = page,
            ["/monitor/monitor.js"] = new Asset("text/javascript; charset=utf-8", Read("monitor.js")),
            ["/monitor/monitor.css"] = new Asset("text/css; charset=utf-8", Read("monitor.css")),
            // The submit panel (inference from the browser, peer to peer with the worker): its own files.
            ["/monitor/submit.js"] = new Asset("text/javascript; charset=utf-8", Read("submit.js")),
            ["/monitor/submit.css"] = new Asset("text/css; charset=utf-8", Read("submit.css")),
            ["/monitor/favicon.svg"] = new Asset("image/svg+xml", Read("favicon.svg")),
        };
    }

    private static byte[] Read(string fileName)
    {
        var name = "SleapRtc.Monitor." + fileName;
        using var stream = typeof(MonitorAssets).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"The monitor asset {name} is missing from {typeof(MonitorAssets).Assembly.GetName().Name}.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
