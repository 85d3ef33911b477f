using System.Text;
using System.Text.Json;

namespace SleapRtc.Protocol;

/// <summary>
/// The classic session string: "sleap-session:" + base64url(JSON {"r","t","p"}) with '=' padding,
/// which Python's urlsafe_b64decode requires. We may add "s" (server URL) and "x" (the extension version of the worker
/// that printed it); classic decoders ignore both. "x" travels beside the server, not through it: a client holding a
/// worker's own string insists on the channel proof even when a server hides that worker's advertisement.
/// </summary>
public static class SessionString
{
    public const string Prefix = "sleap-session:";

    public static string Encode(string roomId, string token, string peerId, string? server = null, int extensionVersion = 0)
    {
        if (string.IsNullOrEmpty(roomId)) throw new ArgumentException("A room id is required.", nameof(roomId));
        if (string.IsNullOrEmpty(token)) throw new ArgumentException("A room token is required.", nameof(token));
        if (string.IsNullOrEmpty(peerId)) throw new ArgumentException("A worker peer id is required.", nameof(peerId));

        // Python's json.dumps separators (", " and ": ") so strings match what classic workers print.
        var json = new StringBuilder();
        json.Append("{\"r\": ").Append(JsonSerializer.Serialize(roomId))
            .Append(", \"t\": ").Append(JsonSerializer.Serialize(token))
            .Append(", \"p\": ").Append(JsonSerializer.Serialize(peerId));
        if (!string.IsNullOrEmpty(server)) json.Append(", \"s\": ").Append(JsonSerializer.Serialize(server));
        if (extensionVersion > 0) json.Append(", \"x\": ").Append(extensionVersion.ToString(System.Globalization.CultureInfo.InvariantCulture));
        json.Append('}');

        var b64 = Convert.ToBase64String(Encoding.UTF8.GetBytes(json.ToString())).Replace('+', '-').Replace('/', '_');
        return Prefix + b64;
    }

    /// <summary>Decodes padded or unpadded strings, with or without the prefix, in either base64 alphabet.</summary>
    /// <exception cref="FormatException">The string is not a session string; the message says why.</exception>
    public static SessionInfo Decode(string sessionString)
    {
        if (string.IsNullOrWhiteSpace(sessionString))
            throw new FormatException("The session string is empty. Copy the whole 'sleap-session:...' line the worker printed.");

        var body = sessionString.Trim();
        if (body.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase)) body = body.Substring(Prefix.Length);
        body = body.Trim().TrimEnd('=').Replace('-', '+').Replace('_', '/');
        if (body.Length % 4 == 1) throw Invalid("its base64 length is impossible (truncated copy?)");
        body = body.PadRight(body.Length + (4 - body.Length % 4) % 4, '=');

        byte[] raw;
        try { raw = Convert.FromBase64String(body); }
        catch (FormatException) { throw Invalid("it is not valid base64url"); }

        try
        {
            using var doc = JsonDocument.Parse(raw);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw Invalid("it does not contain a JSON object");
            var info = new SessionInfo
            {
                RoomId = ReadString(root, "r"),
                Token = ReadString(root, "t"),
                PeerId = ReadString(root, "p"),
                Server = root.TryGetProperty("s", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null,
                ExtensionVersion = root.TryGetProperty("x", out var x) && x.ValueKind == JsonValueKind.Number && x.TryGetInt32(out var version) && version > 0 ? version : 0,
            };
            if (info.RoomId.Length == 0 || info.Token.Length == 0)
                throw Invalid("it has no room id or token");
            return info;
        }
        catch (JsonException) { throw Invalid("it does not contain valid JSON"); }
    }

    public static bool TryDecode(string sessionString, out SessionInfo? info)
    {
        try { info = Decode(sessionString); return true; }
        catch (FormatException) { info = null; return false; }
    }

    private static string ReadString(JsonElement root, string name) =>
        root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() ?? "" : "";

    private static FormatException Invalid(string why) =>
        new($"Invalid session string: {why}. Expected 'sleap-session:' followed by the base64url text a worker prints.");
}
