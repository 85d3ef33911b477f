namespace SleapRtc.Signaling.Monitor;

/// <summary>Links to the monitor page of a room, for Show-SleapMonitor and printed banners.</summary>
public static class MonitorLinks
{
    /// <summary>
    /// The monitor URL of a room with its credentials in the fragment (<c>http://host:port/monitor#room=…&amp;token=…</c>).
    /// Browsers never send the fragment to the server, so the token stays out of request lines and server logs.
    /// Accepts the server URL in the forms users type: ws://, wss://, http://, https:// or bare host:port.
    /// </summary>
    public static string BuildUrl(string serverUrl, string roomId, string token)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(serverUrl);
        ArgumentException.ThrowIfNullOrWhiteSpace(roomId);
        ArgumentException.ThrowIfNullOrWhiteSpace(token);

        var text = serverUrl.Trim();
        if (!text.Contains("://", StringComparison.Ordinal)) text = "http://" + text;
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri))
        {
            throw new ArgumentException($"'{serverUrl}' is not a server URL (expected e.g. http://host:8080 or ws://host:8080).", nameof(serverUrl));
        }
        var scheme = uri.Scheme.ToLowerInvariant() switch
        {
            "ws" or "http" => "http",
            "wss" or "https" => "https",
            _ => throw new ArgumentException($"'{serverUrl}' has an unsupported scheme (use http, https, ws or wss).", nameof(serverUrl)),
        };
        var builder = new UriBuilder(uri) { Scheme = scheme, Path = "/monitor", Query = "", Fragment = "" };
        if (uri.IsDefaultPort) builder.Port = -1;
        return builder.Uri.GetLeftPart(UriPartial.Path)
            + "#room=" + Uri.EscapeDataString(roomId) + "&token=" + Uri.EscapeDataString(token);
    }
}
