using SleapRtc.Signaling.Monitor;

namespace SleapRtc.Monitor.Tests;

public sealed class MonitorLinksTests
{
    [Theory]
    [InlineData("ws://127.0.0.1:8080", "http://127.0.0.1:8080/monitor#room=abc&token=t0k")]
    [InlineData("http://lab-server:9000/", "http://lab-server:9000/monitor#room=abc&token=t0k")]
    [InlineData("wss://signal.example.org", "https://signal.example.org/monitor#room=abc&token=t0k")]
    [InlineData("https://signal.example.org:8443/ws", "https://signal.example.org:8443/monitor#room=abc&token=t0k")]
    [InlineData("gpu-box:8080", "http://gpu-box:8080/monitor#room=abc&token=t0k")]
    public void Builds_a_fragment_url_from_any_server_form(string server, string expected)
    {
        Assert.Equal(expected, MonitorLinks.BuildUrl(server, "abc", "t0k"));
    }

    [Fact]
    public void Credentials_are_escaped_and_never_in_the_query()
    {
        var url = MonitorLinks.BuildUrl("http://h:1", "room/1", "a&b=c#d");
        var uri = new Uri(url);
        Assert.Equal("", uri.Query);
        Assert.Equal("#room=room%2F1&token=a%26b%3Dc%23d", uri.Fragment);
    }

    [Fact]
    public void Rejects_unknown_schemes()
    {
        Assert.Throws<ArgumentException>(() => MonitorLinks.BuildUrl("ftp://h", "r", "t"));
    }

    [Fact]
    public void Token_comparison_matches_only_equal_tokens()
    {
        Assert.True(MonitorService.TokensMatch("0123456789abcdef", "0123456789abcdef"));
        Assert.False(MonitorService.TokensMatch("0123456789abcdeF", "0123456789abcdef"));
        Assert.False(MonitorService.TokensMatch("0123456789abcdef0", "0123456789abcdef"));
        Assert.False(MonitorService.TokensMatch("", "0123456789abcdef"));
    }
}
