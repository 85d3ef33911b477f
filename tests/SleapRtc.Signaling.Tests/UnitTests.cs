using System.Text.Json.Nodes;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Client;
using Xunit;

namespace SleapRtc.Signaling.Tests;

public class UnitTests
{
    private static JsonObject Meta(string json) => JsonNode.Parse(json)!.AsObject();

    [Theory]
    [InlineData("""{"role": "worker"}""", true)]
    [InlineData("""{"role": "client"}""", false)]
    [InlineData("""{"tags": ["x", "b"]}""", true)]
    [InlineData("""{"tags": ["x"]}""", false)]
    [InlineData("""{"properties": {"gpu": {"$gte": 8, "$lte": 8}}}""", true)]
    [InlineData("""{"properties": {"gpu": {"$gte": 9}}}""", false)]
    [InlineData("""{"properties": {"gpu": {"$lte": 7.5}}}""", false)]
    [InlineData("""{"properties": {"gpu": {"$eq": 8.0}}}""", true)]
    [InlineData("""{"properties": {"gpu": 8}}""", true)]
    [InlineData("""{"properties": {"gpu": "8"}}""", false)]
    [InlineData("""{"properties": {"missing": {"$gte": 0}}}""", false)]
    [InlineData("""{"properties": {"missing": {"$lte": 0}}}""", false)]
    [InlineData("""{"properties": {"missing": null}}""", false)]
    [InlineData("""{"properties": {"name": {"$gte": "a"}}}""", true)]
    [InlineData("""{"properties": {"name": {"$gte": 1}}}""", false)]
    [InlineData("""{"properties": {"flag": true}}""", true)]
    [InlineData("""{"properties": {"gpu": {"$unknown": 1}}}""", true)]
    [InlineData("""{}""", true)]
    public void FilterSemanticsMatchClassic(string filters, bool expected)
    {
        var metadata = Meta("""{"tags": ["a", "b"], "properties": {"gpu": 8, "name": "box", "flag": true}}""");
        Assert.Equal(expected, PeerFilter.Matches(Meta(filters), "worker", metadata));
    }

    [Fact]
    public void MergeUnionsTagsMergesPropertiesAndReplacesTheRest()
    {
        var merged = MetadataMerge.Merge(Meta("""{"tags": ["a"], "properties": {"x": 1, "y": 2}, "other": {"k": 1}}"""),
            Meta("""{"tags": ["a", "c"], "properties": {"y": 3}, "other": {"j": 2}}"""));
        Assert.Equal("""{"tags":["a","c"],"properties":{"x":1,"y":3},"other":{"j":2}}""", merged.ToJsonString());
        Assert.Equal("""{"tags":["z"]}""", MetadataMerge.Merge(null, Meta("""{"tags": ["z"]}""")).ToJsonString());
    }

    [Theory]
    [InlineData("ws://host:9000", "ws://host:9000/", "http://host:9000/")]
    [InlineData("wss://signaling.sleap.ai", "wss://signaling.sleap.ai/", "https://signaling.sleap.ai/")]
    [InlineData("https://signaling.sleap.ai", "wss://signaling.sleap.ai/", "https://signaling.sleap.ai/")]
    [InlineData("http://10.0.0.5:8080/", "ws://10.0.0.5:8080/", "http://10.0.0.5:8080/")]
    [InlineData("10.0.0.5:8123", "ws://10.0.0.5:8123/", "http://10.0.0.5:8123/")]
    [InlineData("gpu-box", "ws://gpu-box:8080/", "http://gpu-box:8080/")]
    [InlineData("ws://gpu-box", "ws://gpu-box/", "http://gpu-box/")]
    [InlineData("wss://proxy.example/signal", "wss://proxy.example/signal", "https://proxy.example/")]
    [InlineData("ws://[::1]:8080", "ws://[::1]:8080/", "http://[::1]:8080/")]
    public void EndpointsAcceptWhatUsersType(string input, string ws, string http)
    {
        var endpoints = SignalingEndpoints.Parse(input);
        Assert.Equal(ws, endpoints.WebSocket.AbsoluteUri);
        Assert.Equal(http, endpoints.Http.AbsoluteUri);
        Assert.Equal(http + "health", endpoints.HttpEndpoint("/health").AbsoluteUri);
    }

    [Theory]
    [InlineData("")]
    [InlineData("ftp://host")]
    [InlineData("http://")]
    public void EndpointsRejectNonsense(string input) => Assert.Throws<FormatException>(() => SignalingEndpoints.Parse(input));

    [Fact]
    public void RegistrationRequestAndSignInResultDoNotPrintSecrets()
    {
        var request = new RegistrationRequest("p", "r", "room-secret", "jwt-secret");
        Assert.DoesNotContain("secret", request.ToString());
        Assert.DoesNotContain("secret", new SignInResult("jwt-secret", "u").ToString());
    }

    [Fact]
    public void WorkerFilterBuilderUsesClassicKeys()
    {
        Assert.Equal("""{"role":"worker","properties":{"status":"available","gpu_memory_mb":{"$gte":8192}},"tags":["sleap-rtc"]}""",
            PeerFilters.Workers("available", 8192, ["sleap-rtc"]).ToJsonString());
    }
}
