using System.Text.Json.Nodes;

namespace SleapRtc.Protocol.Jobs;

/// <summary>Reads registered_auth's "ice_servers" ([{"urls": [...]}] or {"url": ...}) for the peer connection options.</summary>
public static class IceServerList
{
    /// <summary>The STUN URLs (TURN entries are left out: the managed stack does not relay).</summary>
    public static IReadOnlyList<string> StunUrls(JsonArray iceServers)
    {
        var urls = new List<string>();
        foreach (var server in iceServers.OfType<JsonObject>())
        {
            var node = server["urls"] ?? server["url"];
            var values = node is JsonArray array ? array.Select(n => n?.ToString()) : new[] { node?.ToString() };
            urls.AddRange(values.OfType<string>().Where(u => u.StartsWith("stun:", StringComparison.OrdinalIgnoreCase)));
        }
        return urls;
    }
}
