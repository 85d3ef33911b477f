using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Playwright;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Client;
using SleapRtc.Signaling.Monitor;
using static Microsoft.Playwright.Assertions;

namespace SleapRtc.Monitor.Tests;

/// <summary>The room job queue (issue 12) in the monitor: the event stream and the page in headless chromium.</summary>
[Collection(BrowserCollection.Name)]
public sealed class MonitorQueueTests(BrowserFixture browser) : IAsyncLifetime
{
    private static readonly TimeSpan WithinOneSecond = TimeSpan.FromSeconds(1);
    private SignalingTestServer _server = null!;
    private string _roomId = "";
    private string _token = "";
    private SignalingClient _submitter = null!;

    public async Task InitializeAsync()
    {
        _server = await SignalingTestServer.StartAsync();
        (_roomId, _token) = await _server.CreateRoomAsync();
        _submitter = new SignalingClient(_server.Host.LocalUrl);
        var signIn = await _submitter.AnonymousSignInAsync("lab-laptop");
        await _submitter.ConnectAsync(new RegistrationRequest(signIn.Username, _roomId, _token, signIn.IdToken, "client"));
    }

    public async Task DisposeAsync()
    {
        await _submitter.DisposeAsync();
        await _server.DisposeAsync();
    }

    private static JsonObject QueueWorkerProperties(string status, string machine) => new()
    {
        ["status"] = status, ["gpu_model"] = "NVIDIA A100", ["gpu_memory_mb"] = 40960, ["hostname"] = machine, ["machine_id"] = machine,
        ["sleaprtc_ext"] = 1, ["worker_name"] = "gpu0@" + machine,
    };

    private static Task ReportAsync(ClassicPeer worker, JobRecord record)
        => worker.SendAsync(new JsonObject { ["type"] = JobQueueMessages.Update, ["record"] = record.ToJson() });

    private static JobRecord Ticket(string jobId, string package, int priority = 0, TicketRequirements? requirements = null)
        => new() { JobId = jobId, PackageName = package, Priority = priority, Requirements = requirements };

    [Fact]
    public async Task The_event_stream_tells_queue_changes_job_changes_and_machine_starts()
    {
        using var request = _server.AuthorisedGet($"/api/rooms/{_roomId}/events", _token);
        using var response = await _server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await using var events = new EventStreamReader(await response.Content.ReadAsStreamAsync());
        var (name, snapshot) = await events.NextAsync(SignalingTestServer.Timeout);
        Assert.Equal("snapshot", name);
        Assert.Equal(0, snapshot.GetProperty("queue_length").GetInt32());
        Assert.Equal(0, snapshot.GetProperty("jobs").GetArrayLength());

        // Two GPU workers of one host: the first one is the machine starting.
        await using var gpu0 = await _server.RegisterWorkerAsync(_roomId, _token, "w-gpu0", QueueWorkerProperties("busy", "node-7"));
        var machine = await events.NextNamedAsync("machine_joined", WithinOneSecond);
        Assert.Equal("node-7", machine.GetProperty("machine_id").GetString());
        Assert.Equal("w-gpu0", machine.GetProperty("peer_id").GetString());
        Assert.Equal("w-gpu0", (await events.NextNamedAsync("worker_joined", WithinOneSecond)).GetProperty("peer_id").GetString());
        // The second GPU of the same machine is a worker joining, not another machine.
        await using var gpu1 = await _server.RegisterWorkerAsync(_roomId, _token, "w-gpu1", QueueWorkerProperties("busy", "node-7"));
        var (next, second) = await events.NextAsync(WithinOneSecond);
        Assert.Equal("worker_joined", next);
        Assert.Equal(("w-gpu1", "node-7"), (second.GetProperty("peer_id").GetString(), second.GetProperty("worker").GetProperty("machine_id").GetString()));

        await _submitter.SubmitTicketAsync(Ticket("job_aaaa00000001", "mice.zip", requirements: new TicketRequirements { MinGpuMemoryMb = 16384, Tags = ["lab-a"] }));
        var queued = await events.NextNamedAsync("queue_changed", WithinOneSecond);
        Assert.Equal(1, queued.GetProperty("queue_length").GetInt32());
        var entry = Assert.Single(queued.GetProperty("queue").EnumerateArray());
        Assert.Equal("job_aaaa00000001", entry.GetProperty("job_id").GetString());
        Assert.Equal(1, entry.GetProperty("position").GetInt32());
        Assert.Equal(16384, entry.GetProperty("requirements").GetProperty("min_gpu_memory_mb").GetInt32());

        await _submitter.SubmitTicketAsync(Ticket("job_aaaa00000002", "flies.zip", priority: 3));
        var reordered = await events.NextNamedAsync("queue_changed", WithinOneSecond);
        Assert.Equal(["job_aaaa00000002", "job_aaaa00000001"], reordered.GetProperty("queue").EnumerateArray().Select(e => e.GetProperty("job_id").GetString()));

        // gpu0 turns available and takes the high-priority ticket; its reports follow as job_changed.
        await gpu0.UpdatePropertiesAsync(new JsonObject { ["status"] = "available" });
        var assigned = await events.NextNamedAsync("job_changed", WithinOneSecond);
        Assert.Equal(("job_aaaa00000002", "w-gpu0"), (assigned.GetProperty("job").GetProperty("job_id").GetString(), assigned.GetProperty("job").GetProperty("worker_id").GetString()));
        await ReportAsync(gpu0, new JobRecord
        {
            JobId = "job_aaaa00000002", State = JobStates.Running,
            Progress = new JobRecordProgress { Epoch = 2, EpochCount = 5, Loss = 0.4, LossHistory = [0.9, 0.4] },
        });
        var running = await events.NextNamedAsync("job_changed", WithinOneSecond);
        Assert.Equal(JobStates.Running, running.GetProperty("job").GetProperty("state").GetString());
        Assert.Equal(2, running.GetProperty("job").GetProperty("progress").GetProperty("loss_history").GetArrayLength());

        // The state document carries the same.
        using var stateRequest = _server.AuthorisedGet($"/api/rooms/{_roomId}/state", _token);
        using var stateResponse = await _server.Http.SendAsync(stateRequest);
        var state = JsonNode.Parse(await stateResponse.Content.ReadAsStringAsync())!;
        Assert.Equal(1, (int)state["queue_length"]!);
        Assert.Equal("job_aaaa00000002", (string?)state["jobs"]![0]!["job_id"]);
        Assert.Equal("Running", (string?)state["jobs"]![0]!["state"]);
    }

    [Fact]
    public async Task The_page_shows_the_queue_and_recent_jobs_with_their_loss_curve_live()
    {
        await using var worker = await _server.RegisterWorkerAsync(_roomId, _token, "w-gpu0", QueueWorkerProperties("busy", "node-7"));
        await _submitter.SubmitTicketAsync(Ticket("job_bbbb00000001", "mice.zip", requirements: new TicketRequirements { MinGpuMemoryMb = 16384, Tags = ["lab-a"] }));
        await _submitter.SubmitTicketAsync(Ticket("job_bbbb00000002", "flies.zip", priority: 3));

        await using var context = await browser.Browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        var page = await context.NewPageAsync();
        page.SetDefaultTimeout(10_000);
        var errors = new List<string>();
        page.PageError += (_, error) => { lock (errors) errors.Add(error); };
        page.Console += (_, message) => { if (message.Type == "error") lock (errors) errors.Add(message.Text); };
        await page.GotoAsync(MonitorLinks.BuildUrl(_server.Host.LocalUrl, _roomId, _token));

        var queueRows = page.Locator("#queue tbody tr");
        await Expect(queueRows).ToHaveCountAsync(2);
        await Expect(page.Locator("#queue-length")).ToHaveTextAsync("(2 waiting)");
        await Expect(queueRows.Nth(0).Locator(".job-id")).ToHaveTextAsync("job_bbbb00000002");
        await Expect(queueRows.Nth(0).Locator(".position")).ToHaveTextAsync("1");
        await Expect(queueRows.Nth(0).Locator(".needs")).ToHaveTextAsync("any worker");
        await Expect(queueRows.Nth(1).Locator(".needs")).ToHaveTextAsync("≥ 16 GB · tags lab-a");
        await Expect(queueRows.Nth(1).Locator(".package")).ToHaveTextAsync("mice.zip");
        await Expect(queueRows.Nth(1).Locator(".age")).ToContainTextAsync(" s");
        await Expect(page.Locator("#jobs-section")).ToBeHiddenAsync();

        // The worker takes the first ticket: it leaves the queue and shows as a job, within a second of each change.
        var clock = Stopwatch.StartNew();
        await worker.UpdatePropertiesAsync(new JsonObject { ["status"] = "available" });
        var jobRow = page.Locator("#jobs tbody tr[data-job-id='job_bbbb00000002']");
        await Expect(jobRow.Locator(".state")).ToHaveTextAsync("Assigned", new LocatorAssertionsToHaveTextOptions { Timeout = 1000 });
        await Expect(jobRow.Locator(".worker")).ToHaveTextAsync("gpu0@node-7");
        await Expect(queueRows).ToHaveCountAsync(1, new LocatorAssertionsToHaveCountOptions { Timeout = 1000 });
        Assert.True(clock.ElapsedMilliseconds < 2000, $"assignment took {clock.ElapsedMilliseconds} ms to show");

        clock.Restart();
        await ReportAsync(worker, new JobRecord
        {
            JobId = "job_bbbb00000002", State = JobStates.Running,
            Progress = new JobRecordProgress { ConfigIndex = 1, ConfigCount = 1, Epoch = 4, EpochCount = 10, Loss = 0.21, LossHistory = [0.9, 0.6, 0.35, 0.21] },
        });
        await Expect(jobRow.Locator(".state")).ToHaveTextAsync("Running", new LocatorAssertionsToHaveTextOptions { Timeout = 1000 });
        await Expect(jobRow.Locator(".progress")).ToContainTextAsync("epoch 4/10");
        await Expect(jobRow.Locator(".loss")).ToContainTextAsync("0.21");
        var points = await jobRow.Locator("polyline.spark").GetAttributeAsync("points");
        Assert.Equal(4, points!.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length);

        await ReportAsync(worker, new JobRecord
        {
            JobId = "job_bbbb00000002", State = JobStates.Running,
            Progress = new JobRecordProgress { ConfigIndex = 1, ConfigCount = 1, Epoch = 5, EpochCount = 10, Loss = 0.18, LossHistory = [0.9, 0.6, 0.35, 0.21, 0.18] },
        });
        await Expect(jobRow.Locator(".progress")).ToContainTextAsync("epoch 5/10", new LocatorAssertionsToContainTextOptions { Timeout = 1000 });
        Assert.Equal(5, (await jobRow.Locator("polyline.spark").GetAttributeAsync("points"))!.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length);

        await ReportAsync(worker, new JobRecord { JobId = "job_bbbb00000002", State = JobStates.Failed, Error = "CUDA out of memory" });
        await Expect(jobRow.Locator(".state")).ToContainTextAsync("Failed", new LocatorAssertionsToContainTextOptions { Timeout = 1000 });
        await Expect(jobRow.Locator(".job-error")).ToHaveTextAsync("CUDA out of memory");

        // Cancelling the waiting ticket empties the queue.
        await _submitter.CancelJobAsync("job_bbbb00000001");
        await Expect(queueRows).ToHaveCountAsync(0, new LocatorAssertionsToHaveCountOptions { Timeout = 1000 });
        await Expect(page.Locator("#queue-empty")).ToBeVisibleAsync();
        await Expect(page.Locator("#jobs tbody tr[data-job-id='job_bbbb00000001'] .state")).ToContainTextAsync("Cancelled");

        var artifacts = Path.Combine(AppContext.BaseDirectory, "artifacts");
        Directory.CreateDirectory(artifacts);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(artifacts, "monitor-queue.png"), FullPage = true });
        lock (errors) Assert.Empty(errors);
    }
}
