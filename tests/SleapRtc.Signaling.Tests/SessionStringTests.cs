using SleapRtc.Protocol;
using Xunit;

namespace SleapRtc.Signaling.Tests;

public class SessionStringTests
{
    [Fact]
    public void EncodesLikeClassicPythonWorker()
    {
        // base64.urlsafe_b64encode(json.dumps({"r": "ab12cd34", "t": "a1b2c3", "p": "peer-1"}).encode())
        var s = SessionString.Encode("ab12cd34", "a1b2c3", "peer-1");
        Assert.Equal("sleap-session:eyJyIjogImFiMTJjZDM0IiwgInQiOiAiYTFiMmMzIiwgInAiOiAicGVlci0xIn0=", s);
    }

    [Theory]
    [InlineData("sleap-session:eyJyIjogImFiMTJjZDM0IiwgInQiOiAiYTFiMmMzIiwgInAiOiAicGVlci0xIn0=")]
    [InlineData("sleap-session:eyJyIjogImFiMTJjZDM0IiwgInQiOiAiYTFiMmMzIiwgInAiOiAicGVlci0xIn0")]
    [InlineData("eyJyIjogImFiMTJjZDM0IiwgInQiOiAiYTFiMmMzIiwgInAiOiAicGVlci0xIn0")]
    public void DecodesPaddedUnpaddedAndPrefixless(string input)
    {
        var info = SessionString.Decode(input);
        Assert.Equal("ab12cd34", info.RoomId);
        Assert.Equal("a1b2c3", info.Token);
        Assert.Equal("peer-1", info.PeerId);
        Assert.Null(info.Server);
    }

    [Fact]
    public void RoundTripsServerUrl()
    {
        var info = SessionString.Decode(SessionString.Encode("r1", "t1", "p1", "ws://10.0.0.5:8080"));
        Assert.Equal("ws://10.0.0.5:8080", info.Server);
    }

    [Fact]
    public void Carries_the_workers_extension_version_beside_the_classic_keys()
    {
        Assert.Equal(2, SessionString.Decode(SessionString.Encode("r1", "t1", "p1", "ws://h:1", extensionVersion: 2)).ExtensionVersion);
        // A classic worker's string (or one made by hand) says nothing: 0, never a guess.
        Assert.Equal(0, SessionString.Decode(SessionString.Encode("r1", "t1", "p1")).ExtensionVersion);
        Assert.Equal(0, SessionString.Decode("sleap-session:" + Convert.ToBase64String("{\"r\": \"r\", \"t\": \"t\", \"p\": \"p\", \"x\": \"2\"}"u8.ToArray())).ExtensionVersion);
    }

    [Theory]
    [InlineData("")]
    [InlineData("sleap-session:!!!")]
    [InlineData("sleap-session:bm90IGpzb24")]
    [InlineData("sleap-session:e30")]
    public void RejectsInvalidWithOneClearError(string input)
    {
        var ex = Assert.Throws<FormatException>(() => SessionString.Decode(input));
        Assert.Contains("session string", ex.Message, StringComparison.OrdinalIgnoreCase);
    }
}
