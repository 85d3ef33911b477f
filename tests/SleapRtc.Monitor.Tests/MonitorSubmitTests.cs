using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using SleapRtc.Protocol.Logging;
using SleapRtc.Signaling.Monitor;
using SleapRtc.WebRtc.PeerConnection;
using SleapRtc.Worker;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace SleapRtc.Monitor.Tests;

/// <summary>
/// The monitor's submit panel in headless Chromium: the page runs inference on a real worker (the stand-in
/// tracker) over the browser's own RTCPeerConnection to our managed WebRTC stack, and offers the predictions for
/// download. Chromium hides its host addresses behind mDNS names as it does for any user (no flag turns that off
/// here), so the worker reaches it through peer-reflexive candidates; headless Chromium gathers only on the
/// default-route interface, so the workers keep their default (non-loopback) addresses and the traffic stays on
/// this host.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class MonitorSubmitTests(BrowserFixture browser, ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);
    private const float RequestTimeoutMs = 45_000;

    private readonly CapturingLog _serverLog = new();
    private readonly ConcurrentBag<string> _requestUrls = [];
    private readonly List<string> _pageErrors = [];
    private readonly RtcPeerConnectionFactory _transport = new();
    private SignalingTestServer _server = null!;
    private IBrowserContext _context = null!;
    private readonly ScratchFolder _scratch = new("sleaprtc-monitor-submit");
    private string _roomId = "";
    private string _token = "";

    public async Task InitializeAsync()
    {
        _server = await SignalingTestServer.StartAsync(log: _serverLog);
        (_roomId, _token) = await _server.CreateRoomAsync();
        _context = await browser.Browser.NewContextAsync(new BrowserNewContextOptions { AcceptDownloads = true, ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
    }

    public async Task DisposeAsync()
    {
        await _context.CloseAsync();
        await _server.DisposeAsync();
        _scratch.Dispose();
    }

    [Fact]
    public async Task A_request_to_a_space_returns_predictions_made_from_the_uploaded_data()
    {
        await using var space = await StartSpaceAsync("mice");
        var data = WriteData("session one.mp4", 300_000);
        var page = await OpenMonitorAsync();
        var panel = SpacePanel(page, "mice");
        await Expect(panel.Locator(".panel-state")).ToHaveTextAsync("ready · queue 0");
        // The space's worker has a card of its own, named after the space it serves.
        await Expect(page.Locator($"article.card[data-peer-id='{space.Session.PeerId}'] .name")).ToHaveTextAsync("space mice");

        await panel.Locator(".data-input").SetInputFilesAsync(data);
        await panel.Locator(".submit-button").ClickAsync();
        var request = panel.Locator(".request").First;
        await Expect(request).ToHaveAttributeAsync("data-state", "done", new LocatorAssertionsToHaveAttributeOptions { Timeout = RequestTimeoutMs });

        var predictions = await DownloadPredictionsAsync(page, request, "session one.predictions.slp");
        AssertDerivedFrom(predictions, data);
        // The space's own models ran: the request carried only the data.
        Assert.Equal(["centroid", "centered_instance"], predictions.GetProperty("models").EnumerateArray().Select(m => m.GetString()));
        await Expect(request.Locator(".request-log")).ToContainTextAsync("Predicted 40 instances in 20 frames");
        // The space speaks our extensions: the page said hello and the worker welcomed it with the job's id.
        await Expect(request).ToHaveAttributeAsync("data-job-id", new Regex("^job_[0-9a-f]{12}$"));
        Report(request, "space request");
        var artifacts = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "artifacts")).FullName;
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(artifacts, "monitor-submit.png"), FullPage = true });

        // The token stayed in the fragment and in the register message: in no URL the page requested, in no server log line.
        Assert.DoesNotContain(_requestUrls, url => url.Contains(_token, StringComparison.Ordinal));
        Assert.DoesNotContain(_serverLog.Lines, line => line.Contains(_token, StringComparison.Ordinal));
        AssertNoPageErrors();
    }

    [Fact]
    public async Task Three_tabs_submitting_at_once_to_one_space_all_queue_and_all_return()
    {
        // ~0.6 s of inference per request, so the three overlap on the worker and two wait their turn.
        using var frames = new EnvironmentScope(("SLEAP_NN_STANDIN_FRAMES", "60"), ("SLEAP_NN_STANDIN_FRAME_SECONDS", "0.01"));
        await using var space = await StartSpaceAsync("flies");
        var tabs = new List<(IPage Page, string Data)>();
        for (var i = 0; i < 3; i++)
        {
            var page = await OpenMonitorAsync();
            await Expect(SpacePanel(page, "flies").Locator(".panel-state")).ToHaveTextAsync("ready · queue 0");
            var data = WriteData($"tab{i}.mp4", 100_000 + i * 1000);
            await SpacePanel(page, "flies").Locator(".data-input").SetInputFilesAsync(data);
            tabs.Add((page, data));
        }

        var longestQueue = 0;
        using var watching = new CancellationTokenSource();
        var watcher = Task.Run(async () =>
        {
            while (!watching.IsCancellationRequested)
            {
                longestQueue = Math.Max(longestQueue, space.SpaceQueueLength);
                await Task.Delay(5);
            }
        });
        // All three at once: the clicks are dispatched together, not one after the other's completion.
        await Task.WhenAll(tabs.Select(t => SpacePanel(t.Page, "flies").Locator(".submit-button").ClickAsync()));
        var requests = tabs.Select(t => SpacePanel(t.Page, "flies").Locator(".request").First).ToList();
        foreach (var request in requests)
            await Expect(request).ToHaveAttributeAsync("data-state", "done", new LocatorAssertionsToHaveAttributeOptions { Timeout = RequestTimeoutMs });
        await watching.CancelAsync();
        await watcher;

        var runs = new List<(double Start, double End)>();
        for (var i = 0; i < tabs.Count; i++)
        {
            var predictions = await DownloadPredictionsAsync(tabs[i].Page, requests[i], $"tab{i}.predictions.slp");
            AssertDerivedFrom(predictions, tabs[i].Data);
            runs.Add((predictions.GetProperty("started_at").GetDouble(), predictions.GetProperty("finished_at").GetDouble()));
            Report(requests[i], $"tab {i}");
        }
        Assert.True(longestQueue >= 2, $"the space's queue reached {longestQueue}; three requests at once should queue");
        runs.Sort();
        for (var i = 1; i < runs.Count; i++) Assert.True(runs[i].Start >= runs[i - 1].End, $"run {i} started before run {i - 1} ended");
        AssertNoPageErrors();
    }

    [Fact]
    public async Task A_stopped_space_shows_offline_within_a_second_and_serves_again_when_a_worker_returns()
    {
        // Long enough that a request is still running when the worker stops.
        using var slow = new EnvironmentScope(("SLEAP_NN_STANDIN_FRAMES", "2000"), ("SLEAP_NN_STANDIN_FRAME_SECONDS", "0.01"));
        await using var first = await StartSpaceAsync("bees");
        var page = await OpenMonitorAsync();
        await page.EvaluateAsync("() => { window.sameDocument = true; }");
        var panel = SpacePanel(page, "bees");
        await Expect(panel.Locator(".panel-state")).ToHaveTextAsync("ready · queue 0");
        await panel.Locator(".data-input").SetInputFilesAsync(WriteData("long.mp4", 50_000));
        await panel.Locator(".submit-button").ClickAsync();
        var inFlight = panel.Locator(".request").First;
        await Expect(inFlight).ToHaveAttributeAsync("data-state", "running", new LocatorAssertionsToHaveAttributeOptions { Timeout = RequestTimeoutMs });

        var clock = Stopwatch.StartNew();
        await first.StopAsync();
        var stopped = clock.ElapsedMilliseconds;
        await Expect(panel).ToHaveAttributeAsync("data-state", "offline", new LocatorAssertionsToHaveAttributeOptions { Timeout = 1000 });
        await Expect(inFlight).ToHaveAttributeAsync("data-state", "failed", new LocatorAssertionsToHaveAttributeOptions { Timeout = 1000 });
        var shown = clock.ElapsedMilliseconds;
        output.WriteLine($"worker stop took {stopped} ms; the page said offline {shown - stopped} ms after it returned");
        Assert.True(shown - stopped < 1000, $"offline shown {shown - stopped} ms after the worker had stopped");
        await Expect(panel.Locator(".panel-state")).ToHaveTextAsync(new Regex("offline"));
        await Expect(panel.Locator(".submit-button")).ToBeDisabledAsync();
        await Expect(inFlight.Locator(".request-status")).ToHaveTextAsync(new Regex("offline|gone"));

        // Another worker takes the name: the same page (no reload) sends to it.
        Environment.SetEnvironmentVariable("SLEAP_NN_STANDIN_FRAMES", "20");
        await using var second = await StartSpaceAsync("bees");
        await Expect(panel.Locator(".panel-state")).ToHaveTextAsync("ready · queue 0");
        await Expect(panel.Locator(".panel-target")).ToContainTextAsync(second.Session.PeerId);
        var data = WriteData("again.mp4", 70_000);
        await panel.Locator(".data-input").SetInputFilesAsync(data);
        await panel.Locator(".submit-button").ClickAsync();
        var retry = panel.Locator(".request").First;
        await Expect(retry).ToHaveAttributeAsync("data-state", "done", new LocatorAssertionsToHaveAttributeOptions { Timeout = RequestTimeoutMs });
        AssertDerivedFrom(await DownloadPredictionsAsync(page, retry, "again.predictions.slp"), data);
        Assert.True(await page.EvaluateAsync<bool>("() => window.sameDocument === true"), "the page was reloaded");
        AssertNoPageErrors();
    }

    [Fact]
    public async Task A_request_to_an_available_worker_sends_the_chosen_model_folder_with_the_data()
    {
        await using var worker = await WorkerHost.StartAsync(new WorkerOptions
        {
            Server = _server.Host.LocalUrl, RoomId = _roomId, Token = _token, Name = "lab-gpu",
            NvidiaSmiPath = RepoFixtures.NvidiaSmi,
            SleapNnPath = RepoFixtures.SleapNn,
            WorkingDirectory = Path.Combine(_scratch.Path, "worker"), PeerConnectionFactory = _transport,
        }, CancellationToken.None).WaitAsync(Wait);
        // A parent folder holding two trained models (each with its training_config.json and a checkpoint).
        var models = Path.Combine(_scratch.Path, "trained");
        foreach (var model in new[] { "centroid", "centered_instance" })
        {
            Directory.CreateDirectory(Path.Combine(models, model));
            File.WriteAllText(Path.Combine(models, model, "training_config.json"), "{\"model\": \"" + model + "\"}");
            File.WriteAllBytes(Path.Combine(models, model, "best.ckpt"), RandomNumberGenerator.GetBytes(20_000));
        }
        var data = WriteData("arena.slp", 120_000);

        var page = await OpenMonitorAsync();
        var panel = page.Locator($".submit-panel[data-peer-id='{worker.Session.PeerId}']");
        await Expect(panel.Locator(".panel-state")).ToHaveTextAsync("available");
        await panel.Locator(".data-input").SetInputFilesAsync(data);
        await panel.Locator(".model-input").SetInputFilesAsync(models);
        await panel.Locator(".submit-button").ClickAsync();
        var request = panel.Locator(".request").First;
        await Expect(request).ToHaveAttributeAsync("data-state", "done", new LocatorAssertionsToHaveAttributeOptions { Timeout = RequestTimeoutMs });

        var predictions = await DownloadPredictionsAsync(page, request, "arena.predictions.slp");
        AssertDerivedFrom(predictions, data);
        Assert.Equal(["centered_instance", "centroid"], predictions.GetProperty("models").EnumerateArray().Select(m => m.GetString()));
        // The page proved the room token over the channel (WebCrypto, the worker's certificate from the DTLS transport).
        Assert.Equal("verified", await request.GetAttributeAsync("data-channel-auth"));
        Assert.Contains("authenticated", await request.GetAttributeAsync("data-connect-steps"));
        Report(request, "worker request");
        // The worker is free again for the next request.
        await Expect(panel.Locator(".panel-state")).ToHaveTextAsync("available");
        AssertNoPageErrors();
    }

    [Fact]
    public async Task Requests_in_a_row_from_one_page_all_return_and_a_larger_upload_streams_through()
    {
        await using var space = await StartSpaceAsync("ants");
        var page = await OpenMonitorAsync();
        var panel = SpacePanel(page, "ants");
        await Expect(panel.Locator(".panel-state")).ToHaveTextAsync("ready · queue 0");
        var connectTimes = new List<double>();
        const int Requests = 8;
        for (var i = 0; i < Requests; i++)
        {
            // A 16 MiB "video" last: it streams from the file in 64 KiB frames, never whole in memory.
            var data = WriteData($"clip{i}.mp4", i == Requests - 1 ? 16 << 20 : 20_000);
            await panel.Locator(".data-input").SetInputFilesAsync(data);
            await panel.Locator(".submit-button").ClickAsync();
            var request = panel.Locator(".request").First;
            await Expect(request.Locator(".request-name")).ToHaveTextAsync($"clip{i}.mp4");
            await Expect(request).ToHaveAttributeAsync("data-state", "done", new LocatorAssertionsToHaveAttributeOptions { Timeout = RequestTimeoutMs });
            AssertDerivedFrom(await DownloadPredictionsAsync(page, request, $"clip{i}.predictions.slp"), data);
            connectTimes.Add(double.Parse((await request.GetAttributeAsync("data-connect-ms"))!, CultureInfo.InvariantCulture));
            Report(request, $"request {i}");
        }
        await Expect(panel.Locator(".request")).ToHaveCountAsync(Requests);
        var sorted = connectTimes.Skip(1).Order().ToList();
        output.WriteLine($"submit -> channel open after the first: p50 {sorted[sorted.Count / 2]:F0} ms, min {sorted[0]:F0} ms, max {sorted[^1]:F0} ms");
        AssertNoPageErrors();
    }

    [Fact]
    public async Task A_request_past_the_spaces_timeout_fails_clearly_and_a_cancelled_one_frees_the_space()
    {
        // 20 s of inference against a 2 s limit.
        using var slow = new EnvironmentScope(("SLEAP_NN_STANDIN_FRAMES", "2000"), ("SLEAP_NN_STANDIN_FRAME_SECONDS", "0.01"));
        await using var space = await StartSpaceAsync("moths", TimeSpan.FromSeconds(2));
        var page = await OpenMonitorAsync();
        var panel = SpacePanel(page, "moths");
        await panel.Locator(".data-input").SetInputFilesAsync(WriteData("slow.mp4", 10_000));
        await panel.Locator(".submit-button").ClickAsync();
        var timedOut = panel.Locator(".request").First;
        await Expect(timedOut).ToHaveAttributeAsync("data-state", "failed", new LocatorAssertionsToHaveAttributeOptions { Timeout = RequestTimeoutMs });
        await Expect(timedOut.Locator(".request-status")).ToHaveTextAsync(new Regex("^timed out: The request did not finish within 2 s"));
        await Expect(timedOut.Locator("a.request-download")).ToBeHiddenAsync();

        using var longer = new EnvironmentScope(("SLEAP_NN_STANDIN_FRAMES", "100000"));
        await using var patient = await StartSpaceAsync("moths-2", TimeSpan.FromMinutes(5));
        var second = SpacePanel(page, "moths-2");
        await second.Locator(".data-input").SetInputFilesAsync(WriteData("cancel-me.mp4", 10_000));
        await second.Locator(".submit-button").ClickAsync();
        var cancelled = second.Locator(".request").First;
        await Expect(cancelled).ToHaveAttributeAsync("data-state", "running", new LocatorAssertionsToHaveAttributeOptions { Timeout = RequestTimeoutMs });
        await Expect(second.Locator(".panel-state")).ToHaveTextAsync("busy · queue 1");
        await cancelled.Locator(".request-cancel").ClickAsync();
        await Expect(cancelled).ToHaveAttributeAsync("data-state", "cancelled");
        // The worker stopped the tracker and let go of its turn: the space is free again.
        await Expect(second.Locator(".panel-state")).ToHaveTextAsync("ready · queue 0");
        AssertNoPageErrors();
    }

    private async Task<WorkerHost> StartSpaceAsync(string name, TimeSpan? requestTimeout = null)
    {
        var models = new[] { "centroid", "centered_instance" }.Select(m => Directory.CreateDirectory(Path.Combine(_scratch.Path, "space-models", m)).FullName).ToArray();
        return await WorkerHost.StartAsync(new WorkerOptions
        {
            Server = _server.Host.LocalUrl, RoomId = _roomId, Token = _token,
            NvidiaSmiPath = RepoFixtures.NvidiaSmi,
            SleapNnPath = RepoFixtures.SleapNn,
            WorkingDirectory = Path.Combine(_scratch.Path, "space-" + Guid.NewGuid().ToString("N")[..6]),
            PeerConnectionFactory = _transport, Space = name, SpaceModelPaths = models,
            SpaceRequestTimeout = requestTimeout ?? TimeSpan.FromMinutes(2),
        }, CancellationToken.None).WaitAsync(Wait);
    }

    private async Task<IPage> OpenMonitorAsync()
    {
        var page = await _context.NewPageAsync();
        page.SetDefaultTimeout(15_000);
        page.Request += (_, request) => _requestUrls.Add(request.Url);
        page.PageError += (_, error) => { lock (_pageErrors) _pageErrors.Add(error); };
        await page.GotoAsync(MonitorLinks.BuildUrl(_server.Host.LocalUrl, _roomId, _token));
        return page;
    }

    private static ILocator SpacePanel(IPage page, string space) => page.Locator($".submit-panel[data-space='{space}']");

    private string WriteData(string name, int size)
    {
        var path = Path.Combine(_scratch.Path, name);
        File.WriteAllBytes(path, RandomNumberGenerator.GetBytes(size));
        return path;
    }

    private static async Task<JsonElement> DownloadPredictionsAsync(IPage page, ILocator request, string expectedName)
    {
        var link = request.Locator("a.request-download");
        await Expect(link).ToBeVisibleAsync();
        var download = await page.RunAndWaitForDownloadAsync(() => link.ClickAsync());
        Assert.Equal(expectedName, download.SuggestedFilename);
        var path = await download.PathAsync();
        return JsonDocument.Parse(await File.ReadAllTextAsync(path)).RootElement.Clone();
    }

    /// <summary>The stand-in tracker wrote what it read: the data's name, size and SHA-256 match the uploaded file.</summary>
    private static void AssertDerivedFrom(JsonElement predictions, string dataPath)
    {
        var bytes = File.ReadAllBytes(dataPath);
        Assert.Equal("predictions", predictions.GetProperty("standin").GetString());
        Assert.Equal(Path.GetFileName(dataPath), predictions.GetProperty("data_name").GetString());
        Assert.Equal(bytes.Length, predictions.GetProperty("data_size").GetInt32());
        Assert.Equal(Convert.ToHexString(SHA256.HashData(bytes)).ToLowerInvariant(), predictions.GetProperty("data_sha256").GetString());
    }

    private void Report(ILocator request, string what)
    {
        var connect = request.GetAttributeAsync("data-connect-ms").GetAwaiter().GetResult();
        var rate = request.GetAttributeAsync("data-upload-mbps").GetAwaiter().GetResult();
        var steps = request.GetAttributeAsync("data-connect-steps").GetAwaiter().GetResult();
        output.WriteLine($"{what}: channel open {connect} ms after submit ({steps}), upload {rate} MB/s");
        Assert.True(double.TryParse(connect, NumberStyles.Float, CultureInfo.InvariantCulture, out _), "the request recorded its connect time");
    }

    private void AssertNoPageErrors()
    {
        lock (_pageErrors) Assert.Empty(_pageErrors);
    }

    /// <summary>Every line the server logs, to prove the token is not among them.</summary>
    private sealed class CapturingLog : ILogSink
    {
        public ConcurrentQueue<string> Lines { get; } = new();
        public bool IsEnabled(LogLevel level) => true;
        public void Write(LogLevel level, string component, string message) => Lines.Enqueue($"{level} {component}: {message}");
    }

    /// <summary>Sets environment variables the stand-in tracker reads, and restores them.</summary>
    private sealed class EnvironmentScope : IDisposable
    {
        private readonly (string Name, string? Value)[] _saved;

        public EnvironmentScope(params (string Name, string Value)[] variables)
        {
            _saved = variables.Select(v => (v.Name, Environment.GetEnvironmentVariable(v.Name))).ToArray();
            foreach (var (name, value) in variables) Environment.SetEnvironmentVariable(name, value);
        }

        public void Dispose()
        {
            foreach (var (name, value) in _saved) Environment.SetEnvironmentVariable(name, value);
        }
    }
}
