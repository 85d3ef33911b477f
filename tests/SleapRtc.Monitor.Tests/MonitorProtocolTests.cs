using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SleapRtc.Signaling.Monitor;
using Xunit.Abstractions;

namespace SleapRtc.Monitor.Tests;

/// <summary>The state document and the event stream, against the real server with classic peers.</summary>
public sealed class MonitorProtocolTests(ITestOutputHelper output) : IAsyncLifetime
{
    /// <summary>The monitor's promise: a change on the server reaches viewers within a second.</summary>
    private static readonly TimeSpan WithinOneSecond = TimeSpan.FromSeconds(1);

    private SignalingTestServer _server = null!;
    private string _roomId = "";
    private string _token = "";

    public async Task InitializeAsync()
    {
        _server = await SignalingTestServer.StartAsync();
        (_roomId, _token) = await _server.CreateRoomAsync();
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Theory]
    [InlineData("state")]
    [InlineData("events")]
    public async Task No_token_is_401_json_without_room_data(string endpoint)
    {
        await using var worker = await _server.RegisterWorkerAsync(_roomId, _token, "w-secret-gpu", SignalingTestServer.WorkerProperties("NVIDIA H100", 81559, "gpu-host-1"));
        // A token in the query string is never accepted (it would land in logs): that is no token either.
        foreach (var path in new[] { $"/api/rooms/{_roomId}/{endpoint}", $"/api/rooms/{_roomId}/{endpoint}?token={_token}" })
        {
            using var request = _server.AuthorisedGet(path, null);
            using var response = await _server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
            Assert.Contains(response.Headers.WwwAuthenticate, h => h.Scheme == "Bearer");
            var body = await response.Content.ReadAsStringAsync();
            using var json = JsonDocument.Parse(body);
            Assert.Equal("unauthorized", json.RootElement.GetProperty("error").GetString());
            Assert.DoesNotContain("w-secret-gpu", body, StringComparison.Ordinal);
            Assert.DoesNotContain("H100", body, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("state")]
    [InlineData("events")]
    public async Task Wrong_token_and_unknown_room_get_the_http_apis_403_and_body(string endpoint)
    {
        await using var worker = await _server.RegisterWorkerAsync(_roomId, _token, "w-secret-gpu", SignalingTestServer.WorkerProperties("NVIDIA H100", 81559, "gpu-host-1"));
        // The HTTP API's answer to a wrong room token: every endpoint must give exactly this one (issue 11, item 4).
        using var api = await _server.Http.PostAsync("/delete-peers-and-room",
            new StringContent(new JsonObject { ["room_id"] = _roomId, ["token"] = _token + "x" }.ToJsonString(), Encoding.UTF8, "application/json"));
        var apiBody = await api.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.Forbidden, api.StatusCode);
        Assert.Equal("{\"detail\":\"Invalid token\"}", apiBody);

        var cases = new (string Path, string Token)[]
        {
            ($"/api/rooms/{_roomId}/{endpoint}", _token + "x"),
            ($"/api/rooms/{_roomId}/{endpoint}", _token.ToUpperInvariant() == _token ? "0" : _token.ToUpperInvariant()),
            ("/api/rooms/nosuchroom/" + endpoint, _token),
        };
        foreach (var (path, token) in cases)
        {
            using var request = _server.AuthorisedGet(path, token);
            using var response = await _server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
            Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
            Assert.Empty(response.Headers.WwwAuthenticate);
            Assert.Equal(apiBody, await response.Content.ReadAsStringAsync());
        }
    }


    [Fact]
    public async Task State_lists_the_workers_of_the_room_only_with_their_fields()
    {
        await using var a = await _server.RegisterWorkerAsync(_roomId, _token, "w-a100", SignalingTestServer.WorkerProperties("NVIDIA A100", 40960, "node-a", name: "alpha"));
        await using var rtx = await _server.RegisterWorkerAsync(_roomId, _token, "w-rtx", SignalingTestServer.WorkerProperties("NVIDIA RTX 4090", 24564, "node-b", status: "busy"));
        await using var client = await _server.RegisterWorkerAsync(_roomId, _token, "c-client", new JsonObject(), role: "client");
        var (otherRoom, otherToken) = await _server.CreateRoomAsync();
        await using var elsewhere = await _server.RegisterWorkerAsync(otherRoom, otherToken, "w-elsewhere", SignalingTestServer.WorkerProperties("Tesla T4", 15360, "node-c"));

        using var request = _server.AuthorisedGet($"/api/rooms/{_roomId}/state", _token);
        using var response = await _server.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("no-store", response.Headers.CacheControl?.ToString() ?? "", StringComparison.Ordinal);
        using var state = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(_roomId, state.RootElement.GetProperty("room_id").GetString());
        var workers = state.RootElement.GetProperty("workers").EnumerateArray().ToDictionary(w => w.GetProperty("peer_id").GetString()!);
        Assert.Equal(["w-a100", "w-rtx"], workers.Keys.Order(StringComparer.Ordinal));
        var alpha = workers["w-a100"];
        Assert.Equal("alpha", alpha.GetProperty("name").GetString());
        Assert.Equal("available", alpha.GetProperty("status").GetString());
        Assert.Equal("NVIDIA A100", alpha.GetProperty("gpu_model").GetString());
        Assert.Equal(40960, alpha.GetProperty("gpu_memory_mb").GetInt64());
        Assert.Equal("node-a", alpha.GetProperty("hostname").GetString());
        Assert.Equal(JsonValueKind.Null, alpha.GetProperty("job").ValueKind);
        var connectedAt = DateTimeOffset.Parse(alpha.GetProperty("connected_at").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(DateTimeOffset.UtcNow - connectedAt, TimeSpan.Zero, TimeSpan.FromMinutes(1));
        Assert.Equal("busy", workers["w-rtx"].GetProperty("status").GetString());
    }

    [Fact]
    public async Task Event_stream_starts_with_a_snapshot_then_reports_each_change_within_a_second()
    {
        await using var first = await _server.RegisterWorkerAsync(_roomId, _token, "w-first", SignalingTestServer.WorkerProperties("NVIDIA A100", 40960, "node-a"));
        using var request = _server.AuthorisedGet($"/api/rooms/{_roomId}/events", _token);
        using var response = await _server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("no-store", response.Headers.CacheControl?.ToString() ?? "", StringComparison.Ordinal);
        await using var events = new EventStreamReader(await response.Content.ReadAsStreamAsync());

        var (name, snapshot) = await events.NextAsync(SignalingTestServer.Timeout);
        Assert.Equal("snapshot", name);
        Assert.Equal(_roomId, snapshot.GetProperty("room_id").GetString());
        Assert.Equal("w-first", Assert.Single(snapshot.GetProperty("workers").EnumerateArray()).GetProperty("peer_id").GetString());

        // Joined.
        var clock = Stopwatch.StartNew();
        await using var second = await _server.RegisterWorkerAsync(_roomId, _token, "w-second", SignalingTestServer.WorkerProperties("NVIDIA RTX 4090", 24564, "node-b"));
        var joined = await events.NextNamedAsync("worker_joined", WithinOneSecond);
        Assert.Equal("w-second", joined.GetProperty("peer_id").GetString());
        Assert.Equal("NVIDIA RTX 4090", joined.GetProperty("worker").GetProperty("gpu_model").GetString());
        Assert.True(clock.Elapsed < WithinOneSecond + SignalingTestServer.Timeout);

        // Status changed.
        await second.UpdatePropertiesAsync(new JsonObject { ["status"] = "reserved" });
        var status = await events.NextNamedAsync("status_changed", WithinOneSecond);
        Assert.Equal("w-second", status.GetProperty("peer_id").GetString());
        Assert.Equal("reserved", status.GetProperty("status").GetString());
        Assert.Equal("available", status.GetProperty("previous_status").GetString());

        // Job progress, as a worker publishes it.
        await second.UpdatePropertiesAsync(new JsonObject
        {
            ["status"] = "busy",
            ["job"] = new JsonObject
            {
                ["job_id"] = "job-1", ["package_name"] = "flies.slp.training_job.zip", ["config_index"] = 1, ["config_count"] = 2,
                ["epoch"] = 3, ["epoch_count"] = 10, ["loss"] = 0.25, ["loss_history"] = new JsonArray(0.9, 0.5, 0.25),
            },
        });
        var busy = await events.NextNamedAsync("status_changed", WithinOneSecond);
        Assert.Equal("busy", busy.GetProperty("status").GetString());
        var progress = await events.NextNamedAsync("job_progress", WithinOneSecond);
        Assert.Equal(3, progress.GetProperty("job").GetProperty("epoch").GetInt32());
        Assert.Equal("flies.slp.training_job.zip", progress.GetProperty("job").GetProperty("package_name").GetString());

        await second.UpdatePropertiesAsync(new JsonObject
        {
            ["job"] = new JsonObject
            {
                ["job_id"] = "job-1", ["package_name"] = "flies.slp.training_job.zip", ["config_index"] = 1, ["config_count"] = 2,
                ["epoch"] = 4, ["epoch_count"] = 10, ["loss"] = 0.2, ["loss_history"] = new JsonArray(0.9, 0.5, 0.25, 0.2),
            },
        });
        var advanced = await events.NextNamedAsync("job_progress", WithinOneSecond);
        Assert.Equal(4, advanced.GetProperty("job").GetProperty("epoch").GetInt32());
        Assert.Equal(4, advanced.GetProperty("job").GetProperty("loss_history").GetArrayLength());

        // Left (the worker's connection closes).
        await second.DisposeAsync();
        var left = await events.NextNamedAsync("worker_left", WithinOneSecond);
        Assert.Equal("w-second", left.GetProperty("peer_id").GetString());
    }

    [Fact]
    public async Task Events_that_carry_nothing_new_are_not_sent()
    {
        await using var worker = await _server.RegisterWorkerAsync(_roomId, _token, "w-quiet", SignalingTestServer.WorkerProperties("NVIDIA A100", 40960, "node-a"));
        using var request = _server.AuthorisedGet($"/api/rooms/{_roomId}/events", _token);
        using var response = await _server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        await using var events = new EventStreamReader(await response.Content.ReadAsStreamAsync());
        Assert.Equal("snapshot", (await events.NextAsync(SignalingTestServer.Timeout)).Name);

        // Re-publishing the same status changes nothing a viewer can see; the next real change is the next event.
        await worker.UpdatePropertiesAsync(new JsonObject { ["status"] = "available" });
        await worker.UpdatePropertiesAsync(new JsonObject { ["hostname"] = "node-a-renamed" });
        var (name, data) = await events.NextAsync(WithinOneSecond);
        Assert.Equal("worker_updated", name);
        Assert.Equal("node-a-renamed", data.GetProperty("worker").GetProperty("hostname").GetString());
    }

    [Fact]
    public async Task Server_reservation_shows_as_reserved_and_release_as_available()
    {
        await using var worker = await _server.RegisterWorkerAsync(_roomId, _token, "w-reserve", SignalingTestServer.WorkerProperties("NVIDIA A100", 40960, "node-a"));
        using var request = _server.AuthorisedGet($"/api/rooms/{_roomId}/events", _token);
        using var response = await _server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        await using var events = new EventStreamReader(await response.Content.ReadAsStreamAsync());
        Assert.Equal("snapshot", (await events.NextAsync(SignalingTestServer.Timeout)).Name);

        var client = await _server.RegisterWorkerAsync(_roomId, _token, "c-offerer", new JsonObject(), role: "client");
        await client.SendAsync(new JsonObject { ["type"] = "offer", ["sender"] = "c-offerer", ["target"] = "w-reserve", ["sdp"] = "v=0\r\n" });
        var reserved = await events.NextNamedAsync("status_changed", WithinOneSecond);
        Assert.Equal("reserved", reserved.GetProperty("status").GetString());

        // The client vanishes before the worker ever published a status: the server's reservation is released.
        await client.DisposeAsync();
        var released = await events.NextNamedAsync("status_changed", WithinOneSecond);
        Assert.Equal("available", released.GetProperty("status").GetString());
    }

    [Fact]
    public async Task Closing_the_stream_frees_the_viewer()
    {
        using (var request = _server.AuthorisedGet($"/api/rooms/{_roomId}/events", _token))
        using (var response = await _server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            await using var events = new EventStreamReader(await response.Content.ReadAsStreamAsync());
            Assert.Equal("snapshot", (await events.NextAsync(SignalingTestServer.Timeout)).Name);
        }
        // HttpClient may pool the socket; a raw connection makes the hang-up explicit.
        using (var tcp = new TcpClient())
        {
            await tcp.ConnectAsync(_server.BaseAddress.Host, _server.BaseAddress.Port);
            var stream = tcp.GetStream();
            await stream.WriteAsync(Encoding.ASCII.GetBytes(
                $"GET /api/rooms/{_roomId}/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {_token}\r\n\r\n"));
            var buffer = new byte[4096];
            using var timeout = new CancellationTokenSource(SignalingTestServer.Timeout);
            var received = new StringBuilder();
            while (!received.ToString().Contains("event: snapshot", StringComparison.Ordinal))
            {
                var read = await stream.ReadAsync(buffer, timeout.Token);
                Assert.True(read > 0);
                received.Append(Encoding.UTF8.GetString(buffer, 0, read));
            }
        }
        var deadline = Stopwatch.StartNew();
        while (_server.Host.Monitor.Hub.ViewerCount(_roomId) > 0 && deadline.Elapsed < TimeSpan.FromSeconds(5)) await Task.Delay(20);
        Assert.Equal(0, _server.Host.Monitor.Hub.ViewerCount(_roomId));
    }

    [Fact]
    public async Task Idle_streams_carry_keep_alive_comments()
    {
        await using var server = await SignalingTestServer.StartAsync(new MonitorOptions { KeepAliveInterval = TimeSpan.FromMilliseconds(200) });
        var (roomId, token) = await server.CreateRoomAsync();
        using var request = server.AuthorisedGet($"/api/rooms/{roomId}/events", token);
        using var response = await server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        using var timeout = new CancellationTokenSource(SignalingTestServer.Timeout);
        string? line;
        do line = await reader.ReadLineAsync(timeout.Token);
        while (line is not null && line != ": keep-alive");
        Assert.Equal(": keep-alive", line);
    }

    [Fact]
    public async Task Repeated_wrong_tokens_are_held_back_but_the_right_token_always_gets_through()
    {
        // The server's credential throttle: 5 wrong tokens per address and per room answered at once, then one a second.
        var (roomId, token) = await _server.CreateRoomAsync();
        var timer = Stopwatch.StartNew();
        for (var attempt = 0; attempt < 5; attempt++)
        {
            using var wrong = await _server.Http.SendAsync(_server.AuthorisedGet($"/api/rooms/{roomId}/state", "guess" + attempt));
            Assert.Equal(HttpStatusCode.Forbidden, wrong.StatusCode);
        }
        Assert.True(timer.ElapsedMilliseconds < 900, $"free attempts took {timer.ElapsedMilliseconds} ms");
        timer.Restart();
        using (var held = await _server.Http.SendAsync(_server.AuthorisedGet($"/api/rooms/{roomId}/state", "guess")))
            Assert.Equal(HttpStatusCode.Forbidden, held.StatusCode);
        Assert.True(timer.ElapsedMilliseconds >= 900, $"the sixth wrong token was answered after {timer.ElapsedMilliseconds} ms");
        // The right token is checked first and never waits (before issue 11 it got 429 after 20 wrong ones).
        timer.Restart();
        using var right = await _server.Http.SendAsync(_server.AuthorisedGet($"/api/rooms/{roomId}/state", token));
        Assert.Equal(HttpStatusCode.OK, right.StatusCode);
        Assert.True(timer.ElapsedMilliseconds < 900, $"the right token waited {timer.ElapsedMilliseconds} ms");
    }

    [Fact]
    public async Task Page_assets_and_errors_carry_the_security_headers()
    {
        foreach (var (path, mediaType) in new[]
        {
            ("/", "text/html"), ("/monitor", "text/html"), ("/monitor/monitor.js", "text/javascript"),
            ("/monitor/monitor.css", "text/css"), ("/monitor/favicon.svg", "image/svg+xml"),
            ("/monitor/submit.js", "text/javascript"), ("/monitor/submit.css", "text/css"),
        })
        {
            using var response = await _server.Http.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(mediaType, response.Content.Headers.ContentType?.MediaType);
            Assert.Equal(MonitorService.ContentSecurityPolicy, response.Headers.GetValues("Content-Security-Policy").Single());
            Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
            Assert.True((await response.Content.ReadAsByteArrayAsync()).Length > 100);
        }
        var html = await _server.Http.GetStringAsync("/monitor");
        Assert.DoesNotContain("<script>", html, StringComparison.Ordinal);
        Assert.DoesNotContain("style=", html, StringComparison.Ordinal);

        using var post = await _server.Http.PostAsync($"/api/rooms/{_roomId}/state", new StringContent(""));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, post.StatusCode);
        Assert.Equal(["GET"], post.Content.Headers.Allow);
        using var head = await _server.Http.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/monitor"));
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal("text/html", head.Content.Headers.ContentType?.MediaType);
        using var badRoom = await _server.Http.SendAsync(_server.AuthorisedGet("/api/rooms/%3Cx%3E/state", _token));
        Assert.Equal(HttpStatusCode.BadRequest, badRoom.StatusCode);
        Assert.Equal(MonitorService.ContentSecurityPolicy, badRoom.Headers.GetValues("Content-Security-Policy").Single());
        // The server's own endpoints are untouched by the monitor's routes.
        using var health = await _server.Http.GetAsync("/health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        using var unknown = await _server.Http.GetAsync("/api/rooms/x/other");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }

    [Fact]
    public async Task Change_to_event_latency_stays_well_under_a_second()
    {
        await using var worker = await _server.RegisterWorkerAsync(_roomId, _token, "w-latency", SignalingTestServer.WorkerProperties("NVIDIA A100", 40960, "node-a"));
        using var request = _server.AuthorisedGet($"/api/rooms/{_roomId}/events", _token);
        using var response = await _server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        await using var events = new EventStreamReader(await response.Content.ReadAsStreamAsync());
        Assert.Equal("snapshot", (await events.NextAsync(SignalingTestServer.Timeout)).Name);

        const int Samples = 40;
        var latencies = new List<double>(Samples);
        for (var i = 0; i < Samples; i++)
        {
            var clock = Stopwatch.StartNew();
            // Sent without waiting for metadata_updated: the clock covers the whole path from the worker's frame.
            await worker.SendAsync(new JsonObject
            {
                ["type"] = "update_metadata", ["peer_id"] = "w-latency",
                ["metadata"] = new JsonObject { ["properties"] = new JsonObject { ["job"] = new JsonObject { ["epoch"] = i + 1, ["epoch_count"] = Samples } } },
            });
            var progress = await events.NextNamedAsync("job_progress", WithinOneSecond);
            latencies.Add(clock.Elapsed.TotalMilliseconds);
            Assert.Equal(i + 1, progress.GetProperty("job").GetProperty("epoch").GetInt32());
        }
        latencies.Sort();
        var p50 = latencies[Samples / 2];
        var p95 = latencies[(int)(Samples * 0.95) - 1];
        output.WriteLine($"update_metadata -> job_progress event: p50 {p50:F1} ms, p95 {p95:F1} ms, max {latencies[^1]:F1} ms over {Samples} updates");
        Assert.True(p95 < 1000, $"p95 {p95:F1} ms");
    }

    [Fact]
    public async Task Room_tokens_never_reach_the_server_log()
    {
        var log = new CapturingLogSink();
        await using var server = await SignalingTestServer.StartAsync(log: log);
        var (roomId, token) = await server.CreateRoomAsync();
        await using var worker = await server.RegisterWorkerAsync(roomId, token, "w-logged", SignalingTestServer.WorkerProperties("NVIDIA A100", 40960, "node-a"));
        var wrongToken = "wrong-" + token;
        using (var ok = await server.Http.SendAsync(server.AuthorisedGet($"/api/rooms/{roomId}/state", token))) Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        using (var bad = await server.Http.SendAsync(server.AuthorisedGet($"/api/rooms/{roomId}/state", wrongToken))) Assert.Equal(HttpStatusCode.Forbidden, bad.StatusCode);
        using (var request = server.AuthorisedGet($"/api/rooms/{roomId}/events", token))
        using (var stream = await server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            await using var events = new EventStreamReader(await stream.Content.ReadAsStreamAsync());
            Assert.Equal("snapshot", (await events.NextAsync(SignalingTestServer.Timeout)).Name);
        }

        var lines = log.Lines;
        Assert.Contains(lines, line => line.Contains("monitor", StringComparison.Ordinal) && line.Contains("refused", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, line => line.Contains(token, StringComparison.Ordinal));
        Assert.DoesNotContain(lines, line => line.Contains(wrongToken, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Deleting_the_room_ends_its_event_streams()
    {
        await using var server = await SignalingTestServer.StartAsync(new MonitorOptions { KeepAliveInterval = TimeSpan.FromMilliseconds(200) });
        var (roomId, token) = await server.CreateRoomAsync();
        await using var worker = await server.RegisterWorkerAsync(roomId, token, "w-doomed", SignalingTestServer.WorkerProperties("NVIDIA A100", 40960, "node-a"));
        using var request = server.AuthorisedGet($"/api/rooms/{roomId}/events", token);
        using var response = await server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        await using var events = new EventStreamReader(await response.Content.ReadAsStreamAsync());
        Assert.Equal("snapshot", (await events.NextAsync(SignalingTestServer.Timeout)).Name);

        using var delete = await server.Http.PostAsync("/delete-peers-and-room",
            new StringContent(new JsonObject { ["room_id"] = roomId, ["token"] = token }.ToJsonString(), Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, delete.StatusCode);

        var left = await events.NextNamedAsync("worker_left", WithinOneSecond);
        Assert.Equal("w-doomed", left.GetProperty("peer_id").GetString());
        await Assert.ThrowsAsync<EndOfStreamException>(() => events.NextAsync(TimeSpan.FromSeconds(3)));
        using var after = await server.Http.SendAsync(server.AuthorisedGet($"/api/rooms/{roomId}/state", token));
        Assert.Equal(HttpStatusCode.Forbidden, after.StatusCode);
    }

    [Fact]
    public async Task Every_viewer_of_a_busy_room_gets_every_change()
    {
        const int Workers = 60;
        const int Viewers = 4;
        var peers = new List<ClassicPeer>();
        try
        {
            for (var i = 0; i < Workers; i++)
            {
                peers.Add(await _server.RegisterWorkerAsync(_roomId, _token, $"w-{i:D3}", SignalingTestServer.WorkerProperties("NVIDIA A100", 40960, $"node-{i:D3}")));
            }
            var streams = new List<(HttpResponseMessage Response, EventStreamReader Events)>();
            for (var v = 0; v < Viewers; v++)
            {
                var response = await _server.Http.SendAsync(_server.AuthorisedGet($"/api/rooms/{_roomId}/events", _token), HttpCompletionOption.ResponseHeadersRead);
                var events = new EventStreamReader(await response.Content.ReadAsStreamAsync());
                var (name, snapshot) = await events.NextAsync(SignalingTestServer.Timeout);
                Assert.Equal("snapshot", name);
                Assert.Equal(Workers, snapshot.GetProperty("workers").GetArrayLength());
                streams.Add((response, events));
            }

            var clock = Stopwatch.StartNew();
            await Task.WhenAll(peers.Select(p => p.UpdatePropertiesAsync(new JsonObject { ["status"] = "busy" })));
            foreach (var (response, events) in streams)
            {
                var seen = new HashSet<string>();
                while (seen.Count < Workers)
                {
                    var changed = await events.NextNamedAsync("status_changed", TimeSpan.FromSeconds(5));
                    Assert.Equal("busy", changed.GetProperty("status").GetString());
                    Assert.True(seen.Add(changed.GetProperty("peer_id").GetString()!));
                }
                await events.DisposeAsync();
                response.Dispose();
            }
            output.WriteLine($"{Workers} status changes reached {Viewers} viewers in {clock.ElapsedMilliseconds} ms");
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5));
        }
        finally
        {
            foreach (var peer in peers) await peer.DisposeAsync();
        }
    }

    [Fact]
    public async Task Clients_stay_out_of_the_stream_and_a_worker_moving_rooms_leaves_the_old_one()
    {
        var moverIdToken = await _server.SignInAsync("w-mover");
        await using var worker = await _server.RegisterWorkerAsync(_roomId, _token, "w-mover", SignalingTestServer.WorkerProperties("NVIDIA A100", 40960, "node-a"), idToken: moverIdToken);
        using var request = _server.AuthorisedGet($"/api/rooms/{_roomId}/events", _token);
        using var response = await _server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        await using var events = new EventStreamReader(await response.Content.ReadAsStreamAsync());
        Assert.Equal("snapshot", (await events.NextAsync(SignalingTestServer.Timeout)).Name);

        await using var client = await _server.RegisterWorkerAsync(_roomId, _token, "c-watcher", new JsonObject(), role: "client");
        var (otherRoom, otherToken) = await _server.CreateRoomAsync();
        // The same peer (same id_token: a classic worker re-sends its own) registering in another room displaces its first connection.
        await using var moved = await _server.RegisterWorkerAsync(otherRoom, otherToken, "w-mover", SignalingTestServer.WorkerProperties("NVIDIA A100", 40960, "node-a"), idToken: moverIdToken);

        var (name, data) = await events.NextAsync(WithinOneSecond);
        Assert.Equal("worker_left", name);
        Assert.Equal("w-mover", data.GetProperty("peer_id").GetString());
    }
}
