using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace SleapRtc.WebRtc.Turn;

/// <summary>How this machine reaches the TURN server; the relay towards peers is always UDP.</summary>
public enum TurnTransport { Udp, Tcp, Tls }

/// <summary>
/// A parsed TURN URI (RFC 7065): <c>turn:host[:port][?transport=udp|tcp]</c> (default port 3478, UDP) or
/// <c>turns:host[:port][?transport=tcp]</c> (TLS over TCP, default port 5349).
/// </summary>
public sealed class TurnServerUrl
{
    private TurnServerUrl(string url, string host, int port, TurnTransport transport)
    {
        Url = url;
        Host = host;
        Port = port;
        Transport = transport;
    }

    /// <summary>The URL as configured (used in messages, so that the user recognises it).</summary>
    public string Url { get; }
    public string Host { get; }
    public int Port { get; }
    public TurnTransport Transport { get; }

    /// <summary>"udp", "tcp" or "tls": the candidate's relay protocol as browsers report it.</summary>
    public string TransportName => Transport.ToString().ToLowerInvariant();

    public static bool IsTurnUrl(string url) =>
        url.StartsWith("turn:", StringComparison.OrdinalIgnoreCase) || url.StartsWith("turns:", StringComparison.OrdinalIgnoreCase);

    /// <summary>Parses a turn:/turns: URL; false for other schemes or a malformed one.</summary>
    public static bool TryParse(string url, out TurnServerUrl? parsed)
    {
        parsed = null;
        if (!IsTurnUrl(url)) return false;
        var secure = url.StartsWith("turns:", StringComparison.OrdinalIgnoreCase);
        var rest = url.Substring(secure ? 6 : 5);
        var transport = secure ? TurnTransport.Tls : TurnTransport.Udp;
        var query = rest.IndexOf('?');
        if (query >= 0)
        {
            foreach (var pair in rest.Substring(query + 1).Split('&'))
            {
                var equals = pair.IndexOf('=');
                if (equals < 0 || !pair.Substring(0, equals).Equals("transport", StringComparison.OrdinalIgnoreCase)) continue;
                var value = pair.Substring(equals + 1).ToLowerInvariant();
                if (value == "tcp") transport = secure ? TurnTransport.Tls : TurnTransport.Tcp;
                else if (value == "udp" && !secure) transport = TurnTransport.Udp;
                else return false; // turns over UDP would be DTLS, which no server we target offers
            }
            rest = rest.Substring(0, query);
        }
        var port = secure ? 5349 : 3478;
        string host;
        if (rest.StartsWith('['))
        {
            var close = rest.IndexOf(']');
            if (close < 0) return false;
            host = rest.Substring(1, close - 1);
            var after = rest.Substring(close + 1);
            if (after.Length > 0 && (!after.StartsWith(':') || !int.TryParse(after.Substring(1), NumberStyles.None, CultureInfo.InvariantCulture, out port))) return false;
        }
        else
        {
            var colon = rest.LastIndexOf(':');
            host = colon >= 0 ? rest.Substring(0, colon) : rest;
            if (colon >= 0 && !int.TryParse(rest.Substring(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out port)) return false;
        }
        if (host.Length == 0 || port is <= 0 or > 65535) return false;
        parsed = new TurnServerUrl(url, host, port, transport);
        return true;
    }

    public override string ToString() => Url;
}

/// <summary>
/// coturn's shared-secret scheme (<c>use-auth-secret</c>, the "TURN REST API" draft): anyone holding the secret
/// mints a username "&lt;unix expiry&gt;:&lt;name&gt;" whose password is base64(HMAC-SHA1(secret, username)); the TURN
/// server recomputes it and refuses it after the expiry, so the secret itself never leaves the signaling server.
/// </summary>
public static class TurnSharedSecret
{
    public static (string Username, string Password) CreateCredentials(string secret, string name, DateTimeOffset expires)
    {
        var username = expires.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture) + ":" + name;
        using var hmac = new HMACSHA1(Encoding.UTF8.GetBytes(secret));
        return (username, Convert.ToBase64String(hmac.ComputeHash(Encoding.UTF8.GetBytes(username))));
    }

    /// <summary>The expiry a shared-secret username carries, or null when it is not of that form.</summary>
    public static DateTimeOffset? ExpiryOf(string username)
    {
        var colon = username.IndexOf(':');
        var stamp = colon >= 0 ? username.Substring(0, colon) : username;
        return long.TryParse(stamp, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) && seconds is > 0 and < 253402300799
            ? DateTimeOffset.FromUnixTimeSeconds(seconds)
            : null;
    }
}
