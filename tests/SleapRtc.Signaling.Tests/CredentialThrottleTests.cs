using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using SleapRtc.Signaling.Server;
using Xunit;
using Xunit.Abstractions;

namespace SleapRtc.Signaling.Tests;

/// <summary>
/// Issue 11, item 4: every credential check is throttled per address and per room (a few free wrong guesses, then
/// about one a second however many connections guess at once), an unknown room and a wrong token get the same
/// answer, and the right token always gets through at once.
/// </summary>
public class CredentialThrottleTests(ITestOutputHelper output)
{
    private static string Register(string peerId, string roomId, string token, string idToken) => Wire.Register(peerId, roomId, token, idToken);

    [Fact]
    public async Task Two_hundred_wrong_tokens_in_parallel_over_200_websockets_are_answered_about_one_a_second()
    {
        await using var server = await TestServer.StartAsync();
        var (roomId, token) = await server.NewRoomAsync();
        var (idToken, peerId) = await server.SignInAsync();
        var guessers = await Task.WhenAll(Enumerable.Range(0, 200).Select(_ => RawPeer.ConnectAsync(server.WsUrl)));
        try
        {
            var answeredAt = new ConcurrentBag<double>();
            var answers = new ConcurrentBag<string>();
            var timer = Stopwatch.StartNew();
            var guesses = guessers.Select(async (guesser, i) =>
            {
                try
                {
                    await guesser.SendAsync(Register(peerId, roomId, $"guess-{i:D4}", idToken));
                    var answer = await guesser.ReceiveAsync("error", TimeSpan.FromMinutes(5));
                    answeredAt.Add(timer.Elapsed.TotalSeconds);
                    answers.Add(answer.ToJsonString());
                }
                catch (Exception e) when (e is System.Net.WebSockets.WebSocketException or OperationCanceledException or ObjectDisposedException) { }
            }).ToList();

            await Task.Delay(TimeSpan.FromSeconds(6));
            var elapsed = timer.Elapsed.TotalSeconds;
            var answered = answeredAt.Count;
            output.WriteLine($"{answered} of 200 parallel wrong tokens answered in {elapsed:F1} s: " + string.Join(", ", answeredAt.OrderBy(t => t).Select(t => t.ToString("F2"))));
            // 5 free, then one a second: about 11 in 6 s (before: all 200 within 5.2 s).
            Assert.InRange(answered, 5, 5 + (int)Math.Ceiling(elapsed) + 1);
            Assert.All(answers, a => Assert.Equal("""{"type":"error","reason":"Invalid token","in_reply_to":"register"}""", a));

            // The right token is not held back by the queue of wrong ones, from the same address and for the same room.
            var (rightIdToken, rightPeerId) = await server.SignInAsync();
            await using var honest = await RawPeer.ConnectAsync(server.WsUrl);
            var honestTimer = Stopwatch.StartNew();
            await honest.SendAsync(Register(rightPeerId, roomId, token, rightIdToken));
            await honest.ReceiveAsync("registered_auth");
            output.WriteLine($"right token answered in {honestTimer.ElapsedMilliseconds} ms while throttled");
            Assert.True(honestTimer.ElapsedMilliseconds < 1000, $"the right token waited {honestTimer.ElapsedMilliseconds} ms");
        }
        finally
        {
            foreach (var guesser in guessers) guesser.Socket.Abort();
        }
    }

    [Fact]
    public async Task Parallel_wrong_tokens_on_the_http_api_are_answered_about_one_a_second()
    {
        await using var server = await TestServer.StartAsync();
        var (roomId, _) = await server.NewRoomAsync();
        using var http = new HttpClient { BaseAddress = server.Http.BaseAddress, Timeout = TimeSpan.FromMinutes(5) };
        using var stop = new CancellationTokenSource();
        var answeredAt = new ConcurrentBag<double>();
        var timer = Stopwatch.StartNew();
        var guesses = Enumerable.Range(0, 40).Select(async i =>
        {
            try
            {
                var path = i % 2 == 0 ? "delete-peers-and-room" : "delete-peer";
                using var content = new StringContent($$"""{"room_id": "{{roomId}}", "peer_id": "p", "token": "guess-{{i}}"}""", Encoding.UTF8, "application/json");
                using var response = await http.PostAsync(path, content, stop.Token);
                Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
                answeredAt.Add(timer.Elapsed.TotalSeconds);
            }
            catch (Exception e) when (e is OperationCanceledException or HttpRequestException) { }
        }).ToList();
        await Task.Delay(TimeSpan.FromSeconds(4));
        var elapsed = timer.Elapsed.TotalSeconds;
        output.WriteLine($"{answeredAt.Count} of 40 parallel wrong HTTP tokens answered in {elapsed:F1} s");
        Assert.InRange(answeredAt.Count, 5, 5 + (int)Math.Ceiling(elapsed) + 1);
        stop.Cancel();
    }

    [Fact]
    public async Task Unknown_room_and_wrong_token_get_the_same_status_and_body_everywhere()
    {
        await using var server = await TestServer.StartAsync(o => o.FreeFailedAuthAttempts = 100);
        var (roomId, token) = await server.NewRoomAsync();
        await using var worker = await server.JoinAsync(roomId, token, "worker");
        var (idToken, peerId) = await server.SignInAsync();

        await using var peer = await RawPeer.ConnectAsync(server.WsUrl);
        await peer.SendAsync(Register(peerId, "nosuchroom", token, idToken));
        var unknownRoom = (await peer.ReceiveAsync("error")).ToJsonString();
        await peer.SendAsync(Register(peerId, roomId, "wrong", idToken));
        var wrongToken = (await peer.ReceiveAsync("error")).ToJsonString();
        Assert.Equal(wrongToken, unknownRoom);

        foreach (var path in new[] { "delete-peer", "delete-peers-and-room" })
        {
            var unknown = await RawPostAsync(server, path, $$"""{"peer_id": "{{worker.PeerId}}", "room_id": "nosuchroom", "token": "{{token}}"}""");
            var wrong = await RawPostAsync(server, path, $$"""{"peer_id": "{{worker.PeerId}}", "room_id": "{{roomId}}", "token": "wrong"}""");
            Assert.Equal(403, unknown.Status);
            Assert.Equal(wrong, unknown);
        }
        // delete-peer with only a peer_id that is not live: no room to check against, the same refusal.
        Assert.Equal((403, """{"detail":"Invalid token"}"""), await RawPostAsync(server, "delete-peer", """{"peer_id": "ghost", "token": "wrong"}"""));
        // The monitor's room endpoints give the very same answer (before: 401 with a body of their own).
        foreach (var endpoint in new[] { "state", "events" })
        {
            Assert.Equal((403, """{"detail":"Invalid token"}"""), await RawMonitorGetAsync(server, $"api/rooms/nosuchroom/{endpoint}", token));
            Assert.Equal((403, """{"detail":"Invalid token"}"""), await RawMonitorGetAsync(server, $"api/rooms/{roomId}/{endpoint}", "wrong"));
        }
        Assert.NotNull(server.Host.Peers.Get(worker.PeerId));
    }

    private static async Task<(int Status, string Body)> RawMonitorGetAsync(TestServer server, string path, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await server.Http.SendAsync(request);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private static async Task<(int Status, string Body)> RawPostAsync(TestServer server, string path, string body)
    {
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        using var response = await server.Http.PostAsync(path, content);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task The_right_token_gets_through_at_once_on_every_endpoint_while_the_address_and_room_are_throttled()
    {
        await using var server = await TestServer.StartAsync();
        var (roomId, token) = await server.NewRoomAsync();
        using var http = new HttpClient { BaseAddress = server.Http.BaseAddress, Timeout = TimeSpan.FromMinutes(5) };
        using var stop = new CancellationTokenSource();
        // 30 wrong monitor tokens in flight (before: after 20, the monitor refused this address with 429, right token included).
        var wrong = Enumerable.Range(0, 30).Select(async i =>
        {
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, $"api/rooms/{roomId}/state");
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "guess-" + i);
                using var response = await http.SendAsync(request, stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or HttpRequestException) { }
        }).ToList();
        await Task.Delay(1000);

        var timer = Stopwatch.StartNew();
        using (var request = new HttpRequestMessage(HttpMethod.Get, $"api/rooms/{roomId}/state"))
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using var state = await http.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, state.StatusCode);
        }
        await using var worker = await server.JoinAsync(roomId, token, "worker");
        var (status, _) = await server.PostAsync("delete-peer", $$"""{"peer_id": "{{worker.PeerId}}", "room_id": "{{roomId}}", "token": "{{token}}"}""");
        Assert.Equal(200, status);
        output.WriteLine($"monitor, register and delete-peer with the right token took {timer.ElapsedMilliseconds} ms while throttled");
        Assert.True(timer.ElapsedMilliseconds < 3000, $"right tokens took {timer.ElapsedMilliseconds} ms");
        stop.Cancel();
    }

    [Fact]
    public async Task Wrong_guesses_on_one_connection_are_spaced_one_interval_apart_after_the_free_ones()
    {
        await using var server = await TestServer.StartAsync(o =>
        {
            o.FreeFailedAuthAttempts = 2;
            // Long enough that a loaded CI box cannot blur "free" failures into held-back ones.
            o.FailedAuthInterval = TimeSpan.FromSeconds(1);
        });
        var (roomId, token) = await server.NewRoomAsync();
        var (idToken, peerId) = await server.SignInAsync();
        await using var peer = await RawPeer.ConnectAsync(server.WsUrl);
        var timer = Stopwatch.StartNew();
        for (var i = 0; i < 2; i++)
        {
            await peer.SendAsync(Register(peerId, "nosuchroom", "t", idToken));
            await peer.ReceiveAsync("error");
        }
        Assert.True(timer.ElapsedMilliseconds < 800, $"free failures took {timer.ElapsedMilliseconds} ms");
        // Then one per interval, counted from the first guess (a steady rate, not a back-off that grows per answer).
        for (var i = 1; i <= 2; i++)
        {
            await peer.SendAsync(Register(peerId, roomId, "t", idToken));
            await peer.ReceiveAsync("error");
            Assert.True(timer.ElapsedMilliseconds >= i * 1000 - 50, $"failure {i + 2} answered {timer.ElapsedMilliseconds} ms after the first");
        }
        timer.Restart();
        await peer.SendAsync(Register(peerId, roomId, token, idToken));
        await peer.ReceiveAsync("registered_auth");
        Assert.True(timer.ElapsedMilliseconds < 900, $"the right token waited {timer.ElapsedMilliseconds} ms");
    }

    [Fact]
    public void Keys_per_address_and_per_room_are_independent_and_the_table_stays_bounded()
    {
        var throttle = new CredentialThrottle(freeFailures: 3, interval: TimeSpan.FromSeconds(1));
        var t0 = DateTimeOffset.UnixEpoch;
        // Three free per key, then one a second: the fourth from one address waits 1 s, the fifth 2 s.
        for (var i = 0; i < 3; i++) Assert.Equal(TimeSpan.Zero, throttle.RecordFailure("10.0.0.1", "room-" + i, t0));
        Assert.Equal(TimeSpan.FromSeconds(1), throttle.RecordFailure("10.0.0.1", "room-x", t0));
        Assert.Equal(TimeSpan.FromSeconds(2), throttle.RecordFailure("10.0.0.1", "room-y", t0));
        // Another address guessing a room that one address already hammered is held back by the room's key.
        for (var i = 0; i < 3; i++) throttle.RecordFailure("10.0.0." + (10 + i), "target", t0);
        Assert.Equal(TimeSpan.FromSeconds(1), throttle.RecordFailure("10.0.0.99", "target", t0));
        // Time heals: a minute later the address is fresh again.
        Assert.Equal(TimeSpan.Zero, throttle.RecordFailure("10.0.0.1", "room-z", t0.AddMinutes(1)));

        // 100,000 one-off guesses from different addresses for different rooms over 100,000 s: old keys are swept.
        for (var i = 0; i < 100_000; i++) throttle.RecordFailure("addr-" + i, "room-" + i, t0.AddSeconds(120 + i));
        Assert.True(throttle.KeyCount < 10_000, $"{throttle.KeyCount} keys kept");
    }
}
