using System.Security.Cryptography;
using System.Text;
using SleapRtc.WebRtc.Turn;
using Xunit;

namespace SleapRtc.WebRtc.Tests.Turn;

public sealed class TurnServerUrlTests
{
    [Theory]
    [InlineData("turn:10.0.0.1", "10.0.0.1", 3478, TurnTransport.Udp)]
    [InlineData("turn:turn.lab.org:3479", "turn.lab.org", 3479, TurnTransport.Udp)]
    [InlineData("turn:turn.lab.org?transport=tcp", "turn.lab.org", 3478, TurnTransport.Tcp)]
    [InlineData("TURN:turn.lab.org:80?transport=udp", "turn.lab.org", 80, TurnTransport.Udp)]
    [InlineData("turns:turn.lab.org", "turn.lab.org", 5349, TurnTransport.Tls)]
    [InlineData("turns:turn.lab.org:443?transport=tcp", "turn.lab.org", 443, TurnTransport.Tls)]
    [InlineData("turn:[2001:db8::1]:3478", "2001:db8::1", 3478, TurnTransport.Udp)]
    public void Parses_rfc7065_urls(string url, string host, int port, TurnTransport transport)
    {
        Assert.True(TurnServerUrl.TryParse(url, out var parsed));
        Assert.Equal(host, parsed!.Host);
        Assert.Equal(port, parsed.Port);
        Assert.Equal(transport, parsed.Transport);
        Assert.Equal(url, parsed.Url);
    }

    [Theory]
    [InlineData("stun:10.0.0.1")]
    [InlineData("turn:")]
    [InlineData("turn:host:notaport")]
    [InlineData("turn:host:70000")]
    [InlineData("turns:host?transport=udp")]
    [InlineData("turn:host?transport=sctp")]
    public void Refuses_what_is_not_a_usable_turn_url(string url) => Assert.False(TurnServerUrl.TryParse(url, out _));

    [Fact]
    public void Shared_secret_credentials_follow_coturns_scheme_and_carry_their_expiry()
    {
        var expires = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);
        var (username, password) = TurnSharedSecret.CreateCredentials("s3cret", "peer-1", expires);
        Assert.Equal("1800000000:peer-1", username);
        using var hmac = new HMACSHA1(Encoding.UTF8.GetBytes("s3cret"));
        Assert.Equal(Convert.ToBase64String(hmac.ComputeHash(Encoding.UTF8.GetBytes("1800000000:peer-1"))), password);
        Assert.Equal(expires, TurnSharedSecret.ExpiryOf(username));
        Assert.Null(TurnSharedSecret.ExpiryOf("alice"));
    }

    [Fact]
    public void The_long_term_key_is_md5_of_user_realm_and_password()
    {
        // RFC 8489 §9.2.2 (SASLprep is the identity for these ASCII strings).
        var expected = MD5.HashData(Encoding.UTF8.GetBytes("user:realm:pass"));
        Assert.Equal(expected, TurnAllocation.LongTermKey("user", "realm", "pass"));
    }
}
