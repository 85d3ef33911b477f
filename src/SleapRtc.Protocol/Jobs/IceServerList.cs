using System.Text.Json.Nodes;
using SleapRtc.WebRtc;

namespace SleapRtc.Protocol.Jobs;

/// <summary>
/// Reads registered_auth's "ice_servers" — the RTCIceServer form, [{"urls": [...] or "url": ..., "username", "credential"}] —
/// into the typed list the peer connection takes: STUN entries and TURN entries with their credentials.
/// </summary>
public static class IceServerList
{
    public static IReadOnlyList<IceServer> Parse(JsonArray iceServers)
    {
        var servers = new List<IceServer>();
        foreach (var server in iceServers.OfType<JsonObject>())
        {
            var node = server["urls"] ?? server["url"];
            var urls = (node is JsonArray array ? array.Select(n => n is JsonValue v && v.TryGetValue<string>(out var s) ? s : null) : new[] { StringOf(node) })
                .OfType<string>()
                .Where(u => u.StartsWith("stun:", StringComparison.OrdinalIgnoreCase) || WebRtc.Turn.TurnServerUrl.IsTurnUrl(u))
                .ToArray();
            if (urls.Length == 0) continue;
            servers.Add(new IceServer(urls, StringOf(server["username"]), StringOf(server["credential"])));
        }
        return servers;
    }

    /// <summary>The TURN entries alone, with their credentials (STUN URLs are taken separately, so that a caller's own STUN list can replace the server's).</summary>
    public static IReadOnlyList<IceServer> TurnServers(JsonArray iceServers) =>
        Parse(iceServers).Select(s => new IceServer(s.Urls.Where(WebRtc.Turn.TurnServerUrl.IsTurnUrl).ToArray(), s.Username, s.Credential))
            .Where(s => s.Urls.Count > 0).ToArray();

    /// <summary>The STUN URLs alone.</summary>
    public static IReadOnlyList<string> StunUrls(JsonArray iceServers) =>
        Parse(iceServers).SelectMany(s => s.Urls).Where(u => u.StartsWith("stun:", StringComparison.OrdinalIgnoreCase)).ToArray();

    private static string? StringOf(JsonNode? node) => node is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;
}
