namespace SleapRtc.Signaling.Client;

/// <summary>
/// The WebSocket and HTTP addresses of one signaling server. Our server serves both on one port;
/// classic deployments used two (8080 WebSocket, 8001 HTTP), which the two-URI constructor covers.
/// </summary>
public sealed class SignalingEndpoints
{
    /// <summary>Port assumed when the user types a bare host name without scheme or port.</summary>
    public const int DefaultPort = 8080;

    public SignalingEndpoints(Uri webSocket, Uri http)
    {
        if (webSocket.Scheme is not ("ws" or "wss")) throw new ArgumentException("The WebSocket URL must use ws:// or wss://.", nameof(webSocket));
        if (http.Scheme is not ("http" or "https")) throw new ArgumentException("The HTTP URL must use http:// or https://.", nameof(http));
        WebSocket = webSocket;
        Http = http;
    }

    public Uri WebSocket { get; }

    /// <summary>HTTP base (scheme, host, port; no path): endpoint paths are appended to it.</summary>
    public Uri Http { get; }

    public Uri HttpEndpoint(string path) => new(Http, path.TrimStart('/'));

    /// <summary>
    /// Accepts what users type: ws://, wss://, http://, https:// URLs, or host[:port]. http(s) maps to
    /// ws(s) on the same port and vice versa; a bare host gets port 8080. A path is kept for the
    /// WebSocket (reverse proxies) and dropped for HTTP.
    /// </summary>
    /// <exception cref="FormatException">The text is not a server address; the message says what was expected.</exception>
    public static SignalingEndpoints Parse(string server)
    {
        if (string.IsNullOrWhiteSpace(server)) throw new FormatException("The signaling server address is empty. Use e.g. ws://host:8080 or host:8080.");
        var text = server.Trim();
        var hasScheme = text.Contains("://", StringComparison.Ordinal);
        if (!hasScheme) text = "ws://" + text;
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
            throw new FormatException($"'{server}' is not a signaling server address. Use ws://host:port, wss://host, http://host:port, or host:port.");

        var secure = uri.Scheme switch
        {
            "ws" or "http" => false,
            "wss" or "https" => true,
            _ => throw new FormatException($"'{server}' uses the scheme '{uri.Scheme}'; use ws, wss, http or https."),
        };
        var explicitPort = hasScheme ? !uri.IsDefaultPort || HasExplicitPort(text) : HasExplicitPort(text);
        var port = explicitPort ? uri.Port : hasScheme ? (secure ? 443 : 80) : DefaultPort;
        var host = uri.HostNameType == UriHostNameType.IPv6 ? "[" + uri.IdnHost.Trim('[', ']') + "]" : uri.IdnHost;
        var path = uri.Scheme is "ws" or "wss" ? uri.PathAndQuery : "/";

        var ws = new Uri($"{(secure ? "wss" : "ws")}://{host}:{port}{path}");
        var http = new Uri($"{(secure ? "https" : "http")}://{host}:{port}/");
        return new SignalingEndpoints(ws, http);
    }

    /// <summary>
    /// Several servers of one deployment (instances sharing a store), as users type them: a comma list
    /// ("ws://a:8080,ws://b:8080", also what SLEAP_RTC_SIGNALING_URL and session strings carry), each entry read by
    /// <see cref="Parse"/>. Order is preference: clients connect to the first reachable and fail over along the list.
    /// Empty entries (a trailing comma) are skipped and repeats dropped.
    /// </summary>
    /// <exception cref="FormatException">The text holds no server address, or one entry is not an address.</exception>
    public static IReadOnlyList<SignalingEndpoints> ParseList(string servers)
    {
        if (string.IsNullOrWhiteSpace(servers)) throw new FormatException("The signaling server address is empty. Use e.g. ws://host:8080 or host:8080.");
        var list = new List<SignalingEndpoints>();
        foreach (var entry in servers.Split(ListSeparator))
        {
            if (string.IsNullOrWhiteSpace(entry)) continue;
            var endpoints = Parse(entry);
            if (!list.Any(e => e.WebSocket == endpoints.WebSocket)) list.Add(endpoints);
        }
        if (list.Count == 0) throw new FormatException($"'{servers}' holds no signaling server address. Use e.g. ws://a:8080,ws://b:8080.");
        return list;
    }

    /// <summary>The comma list of WebSocket URLs (no trailing '/'), the form <see cref="ParseList"/> reads back.</summary>
    public static string FormatList(IEnumerable<SignalingEndpoints> servers)
        => string.Join(ListSeparator.ToString(), servers.Select(s => s.WebSocket.ToString().TrimEnd('/')));

    /// <summary>Separates the servers of one deployment in a server list.</summary>
    public const char ListSeparator = ',';

    private static bool HasExplicitPort(string url)
    {
        var afterScheme = url[(url.IndexOf("://", StringComparison.Ordinal) + 3)..];
        var authority = afterScheme.Split('/', '?', '#')[0];
        if (authority.StartsWith('[')) return authority.Contains("]:", StringComparison.Ordinal);
        return authority.Contains(':');
    }

    public override string ToString() => WebSocket.ToString();
}
