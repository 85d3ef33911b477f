using System.Text.Json;
using System.Text.Json.Nodes;

namespace SleapRtc.Protocol.Signaling;

/// <summary>The classic signaling message "type" values (sleap-RTC / webRTC-connect wire protocol).</summary>
public static class MessageTypes
{
    public const string Register = "register";
    public const string RegisteredAuth = "registered_auth";
    public const string DiscoverPeers = "discover_peers";
    public const string PeerList = "peer_list";
    public const string UpdateMetadata = "update_metadata";
    public const string MetadataUpdated = "metadata_updated";
    public const string PeerMessage = "peer_message";
    public const string Offer = "offer";
    public const string Answer = "answer";
    public const string Candidate = "candidate";
    public const string Error = "error";
    public const string Ping = "ping";
    public const string AdminConflict = "admin_conflict";
    public const string MeshConnect = "mesh_connect";
    public const string MeshOffer = "mesh_offer";
    public const string MeshAnswer = "mesh_answer";
    public const string IceCandidate = "ice_candidate";
}

/// <summary>Error codes of the classic `{"type":"error","code":...,"message":...}` shape, plus ours.</summary>
public static class ErrorCodes
{
    public const string NotInRoom = "NOT_IN_ROOM";
    public const string RoomNotFound = "ROOM_NOT_FOUND";
    public const string InvalidMessage = "INVALID_MESSAGE";
    public const string PeerNotFound = "PEER_NOT_FOUND";
    public const string PeerNotInRoom = "PEER_NOT_IN_ROOM";
    public const string DeliveryFailed = "DELIVERY_FAILED";
    public const string UnknownMessageType = "UNKNOWN_MESSAGE_TYPE";
    public const string InvalidJson = "INVALID_JSON";
    /// <summary>Ours: the server refused an offer because the worker is reserved by another client or not available.</summary>
    public const string WorkerBusy = "WORKER_BUSY";
    /// <summary>Ours: the id_token is missing its signature, forged or expired (classic sent a type-less {"error":"Invalid token"}).</summary>
    public const string InvalidIdToken = "INVALID_ID_TOKEN";
    /// <summary>Ours: another connection holds this peer_id (it registered it first with another id_token).</summary>
    public const string PeerIdInUse = "PEER_ID_IN_USE";
    /// <summary>Ours, to a worker: the client whose offer reserved it (the error's <c>sender</c>) left the server; a
    /// connection not yet open will not be, and the worker need not wait out its reservation timeout.</summary>
    public const string PeerLeft = "PEER_LEFT";
    /// <summary>Ours: a registration as an inference space whose name another peer of the room holds (the error's
    /// <c>current_holder</c>); the registration is refused.</summary>
    public const string SpaceTaken = "SPACE_TAKEN";
    /// <summary>Ours: the server cannot serve the request now (its shared store, Redis, is unreachable); try again, or another server.</summary>
    public const string ServerUnavailable = "SERVER_UNAVAILABLE";
}

/// <summary>The classic registration failure reasons (`{"type":"error","reason":...}` shape).</summary>
public static class RegistrationReasons
{
    public const string MissingFields = "Missing required fields during registration.";
    public const string InvalidToken = "Invalid token";
    /// <summary>Classic's answer for an unknown room. Our server answers <see cref="InvalidToken"/> instead, so a guesser
    /// cannot tell which rooms exist; kept for clients talking to classic servers.</summary>
    public const string RoomNotFound = "Room not found";
    public const string RoomExpired = "Room expired";
    /// <summary>Ours: the peer_id is bound to the id_token of the connection that registered it first.</summary>
    public const string PeerIdInUse = "Peer id in use";
    /// <summary>Ours: another peer of the room serves an inference space of this name.</summary>
    public const string SpaceTaken = "Space name taken";
    public const string StoreError = "DynamoDB error";
    /// <summary>The reason a worker (or the server on its behalf) gives when refusing an offer.</summary>
    public const string WorkerBusy = "worker_busy";
}

/// <summary>Small helpers for reading and writing signaling JSON without a serializer contract per message.</summary>
public static class SignalingJson
{
    /// <summary>Key added to server errors naming the request type that caused them, so clients can match errors to waiters. Classic peers ignore it.</summary>
    public const string InReplyTo = "in_reply_to";

    public static string? GetString(this JsonObject message, string key)
        => message.TryGetPropertyValue(key, out var node) && node is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;

    public static bool GetBool(this JsonObject message, string key)
        => message.TryGetPropertyValue(key, out var node) && node is JsonValue value && value.TryGetValue<bool>(out var flag) && flag;

    public static JsonObject? GetObject(this JsonObject message, string key)
        => message.TryGetPropertyValue(key, out var node) ? node as JsonObject : null;

    /// <summary>Parses a frame; returns null when the text is not JSON (the caller answers INVALID_JSON).</summary>
    public static JsonNode? TryParse(string text)
    {
        try { return JsonNode.Parse(text); }
        catch (JsonException) { return null; }
    }

    /// <summary>The classic handler error shape `{"type":"error","code","message"}`.</summary>
    public static JsonObject CodedError(string code, string message, string? inReplyTo = null)
    {
        var error = new JsonObject { ["type"] = MessageTypes.Error, ["code"] = code, ["message"] = message };
        if (inReplyTo is not null) error[InReplyTo] = inReplyTo;
        return error;
    }

    /// <summary>The classic registration error shape `{"type":"error","reason"}`.</summary>
    public static JsonObject ReasonError(string reason, string? inReplyTo = MessageTypes.Register)
    {
        var error = new JsonObject { ["type"] = MessageTypes.Error, ["reason"] = reason };
        if (inReplyTo is not null) error[InReplyTo] = inReplyTo;
        return error;
    }

    /// <summary>
    /// A deep copy whose scalars are plain .NET values (string, long, decimal, double, bool) instead of
    /// views over the parsed document: reading those allocates nothing, which keeps filtering a
    /// thousand workers per discover_peers cheap. Serializes to the same JSON.
    /// </summary>
    public static JsonNode? Materialize(JsonNode? node)
    {
        switch (node)
        {
            case null:
                return null;
            case JsonObject obj:
                var copy = new JsonObject();
                foreach (var (key, value) in obj) copy[key] = Materialize(value);
                return copy;
            case JsonArray array:
                var items = new JsonArray();
                foreach (var item in array) items.Add(Materialize(item));
                return items;
            default:
                var scalar = (JsonValue)node;
                switch (scalar.GetValueKind())
                {
                    case JsonValueKind.String: return JsonValue.Create(scalar.GetValue<string>());
                    case JsonValueKind.True: return JsonValue.Create(true);
                    case JsonValueKind.False: return JsonValue.Create(false);
                    case JsonValueKind.Number:
                        if (scalar.TryGetValue<long>(out var integer)) return JsonValue.Create(integer);
                        if (scalar.TryGetValue<decimal>(out var exact)) return JsonValue.Create(exact);
                        if (scalar.TryGetValue<double>(out var real)) return JsonValue.Create(real);
                        return scalar.DeepClone();
                    default:
                        return scalar.DeepClone();
                }
        }
    }

    /// <summary>Deep copy through text: JsonNode instances cannot have two parents.</summary>
    public static JsonNode? Clone(JsonNode? node) => node?.DeepClone();

    public static string ToWire(JsonNode node) => node.ToJsonString(WireOptions);

    public static byte[] ToUtf8(JsonNode node) => JsonSerializer.SerializeToUtf8Bytes(node, WireOptions);

    /// <summary>Compact output with non-ASCII kept readable; SDP contains only ASCII so escaping is irrelevant there.</summary>
    public static readonly JsonSerializerOptions WireOptions = new()
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        WriteIndented = false,
    };
}
