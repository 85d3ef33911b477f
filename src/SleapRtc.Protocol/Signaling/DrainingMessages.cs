namespace SleapRtc.Protocol.Signaling;

/// <summary>
/// Our signaling extension for stopping one instance of several without dropping its peers (draining).
/// A peer that can move lists <see cref="ClientFeature"/> under <see cref="ClientExtensionsKey"/> in its
/// <c>register</c> message; when the instance stops, it sends such peers
/// <c>{"type":"server_draining","timeout_ms":N}</c>: connect to another instance of the server list, register there
/// under the same peer id, then close this connection, within N ms (after that the instance closes it). A peer with
/// nowhere to go (a single server, or no other instance answering) closes at once and reconnects later, so the drain
/// of a lone server takes no longer than a stop.
/// Classic peers never get the message (they did not ask for it): they just see the connection close.
/// </summary>
public static class DrainingMessages
{
    /// <summary>Key of the register message listing what the client understands (classic servers ignore it).</summary>
    public const string ClientExtensionsKey = "client_extensions";
    public const string ClientFeature = "server_draining";

    /// <summary>server → peer: <c>{type, timeout_ms}</c>.</summary>
    public const string ServerDraining = "server_draining";
    public const string TimeoutMsKey = "timeout_ms";
}
