using System.Text.Json.Nodes;
using Xunit;

namespace SleapRtc.Signaling.Tests;

public class ServerSmokeTests
{
    [Fact]
    public async Task ClassicWorkerAndClientRegisterDiscoverAndExchangeSdp()
    {
        await using var server = await TestServer.StartAsync();
        var (roomId, token) = await server.NewRoomAsync();
        await using var worker = await server.JoinAsync(roomId, token, "worker",
            """{"tags": ["sleap-rtc", "training-worker"], "properties": {"gpu_memory_mb": 24576, "gpu_model": "RTX", "status": "available"}}""");
        await using var client = await server.JoinAsync(roomId, token, "client");

        await client.SendAsync($$"""{"type": "discover_peers", "from_peer_id": "{{client.PeerId}}", "filters": {"role": "worker", "room_id": "{{roomId}}", "tags": ["sleap-rtc"], "properties": {"status": "available", "gpu_memory_mb": {"$gte": 8192} } } }""");
        var list = await client.ReceiveAsync("peer_list");
        Assert.Equal(1, (int)list["count"]!);
        Assert.Equal(worker.PeerId, (string?)list["peers"]![0]!["peer_id"]);

        await client.SendAsync($$"""{"type": "offer", "sender": "{{client.PeerId}}", "target": "{{worker.PeerId}}", "sdp": "v=0 offer"}""");
        var offer = await worker.ReceiveAsync("offer");
        Assert.Equal(client.PeerId, (string?)offer["sender"]);
        Assert.Equal("v=0 offer", (string?)offer["sdp"]);

        await worker.SendAsync($$"""{"type": "answer", "sender": "{{worker.PeerId}}", "target": "{{client.PeerId}}", "sdp": "v=0 answer"}""");
        var answer = await client.ReceiveAsync("answer");
        Assert.Equal(worker.PeerId, (string?)answer["sender"]);
    }
}
