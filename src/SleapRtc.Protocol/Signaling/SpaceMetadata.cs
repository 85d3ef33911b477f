using System.Text.Json.Nodes;

namespace SleapRtc.Protocol.Signaling;

/// <summary>
/// How an inference space shows in a room. A worker serving a space registers with role "space" (not
/// "worker"): the server then relays every offer to it without the one-client reservation workers get, so
/// requests from many clients can queue on it, and worker discovery never offers it for training.
/// </summary>
public static class SpaceMetadata
{
    public const string Role = "space";
    /// <summary>Listed in registered_auth's server_extensions by a server that claims space names at registration,
    /// atomically, and refuses a second holder with <see cref="ErrorCodes.SpaceTaken"/>.</summary>
    public const string ServerFeature = "space_names";
    public const string Tag = "inference-space";
    /// <summary>The space's name (unique in a room).</summary>
    public const string NameProperty = "space";
    /// <summary>"ready" (idle) or "busy" (running a request).</summary>
    public const string StateProperty = "space_state";
    /// <summary>Requests waiting or running.</summary>
    public const string QueueProperty = "queue_length";

    public const string Ready = "ready";
    public const string Busy = "busy";

    /// <summary>discover_peers filter for the spaces of a room, or the one holder of a name.</summary>
    public static JsonObject Filter(string? name) => new()
    {
        ["role"] = Role,
        ["properties"] = name is null ? new JsonObject() : new JsonObject { [NameProperty] = name },
    };
}
