using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace SleapRtc.Signaling.Server;

/// <summary>
/// Issues and checks the id_tokens of /anonymous-signin: compact JWTs signed with HMAC-SHA256 under a
/// 256-bit key the server keeps in its database, so tokens survive a restart and cannot be forged.
/// </summary>
internal sealed class IdTokenService(byte[] key, TimeSpan lifetime)
{
    public const string Issuer = "sleap-rtc-signaling";

    public static byte[] NewKey() => RandomNumberGenerator.GetBytes(32);

    public string Issue(string username, DateTimeOffset now)
    {
        var header = Base64Url("""{"alg":"HS256","typ":"JWT"}"""u8);
        var payload = new JsonObject
        {
            ["sub"] = username,
            ["cognito:username"] = username,
            ["iss"] = Issuer,
            ["token_use"] = "id",
            ["iat"] = now.ToUnixTimeSeconds(),
            ["exp"] = (now + lifetime).ToUnixTimeSeconds(),
            // Every token is unique, even two issued in the same second for the same name: the peer id binding
            // (PeerIdBindings) relies on nobody else being able to obtain the token a peer registered with.
            ["jti"] = Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant(),
        };
        var signingInput = header + "." + Base64Url(Encoding.UTF8.GetBytes(payload.ToJsonString()));
        return signingInput + "." + Base64Url(HMACSHA256.HashData(key, Encoding.ASCII.GetBytes(signingInput)));
    }

    /// <summary>Returns the subject (username) of a valid, unexpired token, else null.</summary>
    public string? Validate(string? token, DateTimeOffset now)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 4096) return null;
        var parts = token.Split('.');
        if (parts.Length != 3) return null;
        var expected = HMACSHA256.HashData(key, Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]));
        var signature = FromBase64Url(parts[2]);
        if (signature is null || !CryptographicOperations.FixedTimeEquals(expected, signature)) return null;

        var headerBytes = FromBase64Url(parts[0]);
        var payloadBytes = FromBase64Url(parts[1]);
        if (headerBytes is null || payloadBytes is null) return null;
        try
        {
            if (JsonNode.Parse(headerBytes) is not JsonObject header || (string?)header["alg"] != "HS256") return null;
            if (JsonNode.Parse(payloadBytes) is not JsonObject payload) return null;
            if ((string?)payload["iss"] != Issuer) return null;
            var expires = payload["exp"]?.GetValue<long>();
            if (expires is null || DateTimeOffset.FromUnixTimeSeconds(expires.Value) <= now) return null;
            return (string?)payload["sub"];
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or FormatException)
        {
            return null;
        }
    }

    private static string Base64Url(ReadOnlySpan<byte> bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static byte[]? FromBase64Url(string text)
    {
        var padded = text.Replace('-', '+').Replace('_', '/');
        padded = padded.PadRight(padded.Length + (4 - padded.Length % 4) % 4, '=');
        try { return Convert.FromBase64String(padded); }
        catch (FormatException) { return null; }
    }
}
