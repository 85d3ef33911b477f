namespace SleapRtc.Signaling.Monitor;

/// <summary>Tunables of the monitor endpoints; the defaults suit a lab server.</summary>
public sealed class MonitorOptions
{
    /// <summary>
    /// How often an idle event stream carries a comment line, so proxies and browsers keep it open; each time the
    /// stream also checks that its token still opens the room (a deleted or expired room ends its streams).
    /// </summary>
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Open event streams allowed per room; more are answered 429 so one room cannot exhaust the server.</summary>
    public int MaxViewersPerRoom { get; set; } = 64;

    /// <summary>The reconnect delay the event stream suggests to its reader (SSE <c>retry:</c> field).</summary>
    public TimeSpan ReconnectDelay { get; set; } = TimeSpan.FromSeconds(2);
}
