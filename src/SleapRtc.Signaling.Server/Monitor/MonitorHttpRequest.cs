namespace SleapRtc.Signaling.Monitor;

/// <summary>
/// The parts of an HTTP/1.1 request the monitor routes on: method, request target (path and optional query,
/// as on the request line) and headers (looked up case-insensitively; a repeated header keeps its last value).
/// </summary>
public sealed class MonitorHttpRequest
{
    private readonly Dictionary<string, string> _headers;

    public MonitorHttpRequest(string method, string target, IEnumerable<KeyValuePair<string, string>> headers, string? remoteAddress = null)
    {
        RemoteAddress = remoteAddress;
        Method = method;
        Target = target;
        _headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var header in headers) _headers[header.Key] = header.Value;
        var queryStart = target.IndexOf('?', StringComparison.Ordinal);
        Path = queryStart < 0 ? target : target[..queryStart];
    }

    public string Method { get; }
    /// <summary>The client's IP address, used to slow down token guessing; null when unknown.</summary>
    public string? RemoteAddress { get; }
    public string Target { get; }
    /// <summary>The target without its query string: the monitor never reads anything from a query.</summary>
    public string Path { get; }

    public string? Header(string name) => _headers.TryGetValue(name, out var value) ? value : null;
}
