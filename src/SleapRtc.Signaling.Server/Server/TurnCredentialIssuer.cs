using SleapRtc.WebRtc.Turn;

namespace SleapRtc.Signaling.Server;

/// <summary>
/// Hands every registered peer short-lived credentials for the lab's TURN servers in coturn's shared-secret scheme
/// (<c>use-auth-secret</c>/<c>static-auth-secret</c>): username "&lt;unix expiry&gt;:&lt;peer id&gt;", password
/// base64(HMAC-SHA1(secret, username)). The secret stays here; what a peer gets stops working at the expiry.
/// </summary>
internal sealed class TurnCredentialIssuer
{
    private readonly string _secret;

    private TurnCredentialIssuer(IReadOnlyList<string> urls, string secret, TimeSpan lifetime)
    {
        Urls = urls;
        _secret = secret;
        Lifetime = lifetime;
    }

    public IReadOnlyList<string> Urls { get; }
    public TimeSpan Lifetime { get; }

    /// <summary>Null when no TURN server is configured.</summary>
    /// <exception cref="ArgumentException">A URL that is not turn:/turns:, or URLs without a secret (or a secret without URLs).</exception>
    public static TurnCredentialIssuer? From(SignalingServerOptions options)
    {
        var urls = options.TurnUrls ?? Array.Empty<string>();
        var hasSecret = !string.IsNullOrEmpty(options.TurnSecret);
        if (urls.Count == 0)
        {
            if (hasSecret) throw new ArgumentException("a TURN secret was given without any TURN URL (turn:host:3478)", nameof(options));
            return null;
        }
        foreach (var url in urls)
            if (!TurnServerUrl.TryParse(url, out _))
                throw new ArgumentException($"'{url}' is not a TURN URL (turn:host[:port][?transport=udp|tcp] or turns:host[:port])", nameof(options));
        if (!hasSecret) throw new ArgumentException("TURN URLs need the TURN server's shared secret (coturn's static-auth-secret)", nameof(options));
        if (options.TurnCredentialLifetime <= TimeSpan.Zero) throw new ArgumentException("the TURN credential lifetime must be positive", nameof(options));
        return new TurnCredentialIssuer(urls.ToArray(), options.TurnSecret!, options.TurnCredentialLifetime);
    }

    public (string Username, string Password) CredentialsFor(string peerId) =>
        TurnSharedSecret.CreateCredentials(_secret, peerId, DateTimeOffset.UtcNow + Lifetime);

    /// <summary>
    /// How long after issuing credentials the server sends the peer fresh ones: a little before half the lifetime (40-50 %,
    /// drawn anew each time), so the credentials a peer holds always have about half their lifetime left, and thousands
    /// of peers registered in the same minute (a server restart) do not all renew in the same instant again.
    /// </summary>
    public TimeSpan NextRenewalDelay() => TimeSpan.FromTicks((long)(Lifetime.Ticks * (0.4 + 0.1 * Random.Shared.NextDouble())));

    /// <summary>For the start-up log line: the URLs and the lifetime, never the secret.</summary>
    public override string ToString() => $"TURN {string.Join(",", Urls)} (credentials valid {Lifetime.TotalHours:0.#} h)";
}
