using System.Diagnostics;
using System.Text.Json.Nodes;
using Microsoft.Playwright;
using SleapRtc.Signaling.Monitor;
using static Microsoft.Playwright.Assertions;

namespace SleapRtc.Monitor.Tests;

/// <summary>The monitor page in headless Debian chromium against the real server and classic-shaped workers.</summary>
[Collection(BrowserCollection.Name)]
public sealed class MonitorBrowserTests(BrowserFixture browser) : IAsyncLifetime
{
    /// <summary>Cards follow a server-side change within a second.</summary>
    private const float WithinOneSecondMs = 1000;

    private SignalingTestServer _server = null!;
    private IBrowserContext _context = null!;
    private IPage _page = null!;
    private readonly List<string> _consoleErrors = [];
    private string _roomId = "";
    private string _token = "";

    public async Task InitializeAsync()
    {
        _server = await SignalingTestServer.StartAsync();
        (_roomId, _token) = await _server.CreateRoomAsync();
        _context = await browser.Browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 760 } });
        _page = await _context.NewPageAsync();
        _page.SetDefaultTimeout(10_000);
        _page.Console += (_, message) => { if (message.Type == "error") lock (_consoleErrors) _consoleErrors.Add(message.Text); };
        _page.PageError += (_, error) => { lock (_consoleErrors) _consoleErrors.Add(error); };
    }

    public async Task DisposeAsync()
    {
        await _context.CloseAsync();
        await _server.DisposeAsync();
    }

    private string MonitorUrl(string token) => MonitorLinks.BuildUrl(_server.Host.LocalUrl, _roomId, token);

    private ILocator Card(string peerId) => _page.Locator($"article.card[data-peer-id='{peerId}']");

    private void AssertNoConsoleErrors()
    {
        lock (_consoleErrors) Assert.Empty(_consoleErrors);
    }

    [Fact]
    public async Task Three_workers_show_as_three_cards_with_their_fields()
    {
        await using var a100 = await _server.RegisterWorkerAsync(_roomId, _token, "w-a100", SignalingTestServer.WorkerProperties("NVIDIA A100-SXM4-80GB", 81920, "gpu-node-01", name: "alpha"));
        await using var rtx = await _server.RegisterWorkerAsync(_roomId, _token, "w-rtx4090", SignalingTestServer.WorkerProperties("NVIDIA GeForce RTX 4090", 24564, "lab-desktop-7", status: "reserved", name: "bravo"));
        await using var t4 = await _server.RegisterWorkerAsync(_roomId, _token, "w-t4", SignalingTestServer.WorkerProperties("Tesla T4", 15360, "cloud-t4-2", status: "busy", name: "charlie"));
        await t4.UpdatePropertiesAsync(new JsonObject
        {
            ["job"] = new JsonObject
            {
                ["job_id"] = "job-7f3a", ["package_name"] = "mice_topdown.slp.training_job.zip", ["phase"] = "training",
                ["started_at"] = DateTimeOffset.UtcNow.AddMinutes(-42).ToString("o"),
                ["config_index"] = 2, ["config_count"] = 2, ["config_name"] = "centered_instance.json",
                ["epoch"] = 37, ["epoch_count"] = 100, ["loss"] = 0.00412, ["val_loss"] = 0.00530,
                ["loss_history"] = new JsonArray(0.091, 0.052, 0.034, 0.022, 0.017, 0.012, 0.0101, 0.0083, 0.0071, 0.0064, 0.0058, 0.0051, 0.0047, 0.0044, 0.00412),
            },
        });

        await _page.GotoAsync(MonitorUrl(_token));
        await Expect(_page.Locator("article.card")).ToHaveCountAsync(3);

        await Expect(Card("w-a100").Locator(".name")).ToHaveTextAsync("alpha");
        await Expect(Card("w-a100").Locator(".peer-id")).ToHaveTextAsync("w-a100");
        await Expect(Card("w-a100").Locator(".hostname")).ToHaveTextAsync("gpu-node-01");
        await Expect(Card("w-a100").Locator(".gpu-model")).ToHaveTextAsync("NVIDIA A100-SXM4-80GB");
        await Expect(Card("w-a100").Locator(".gpu-memory")).ToHaveTextAsync("80 GB");
        await Expect(Card("w-a100").Locator(".status-badge")).ToHaveTextAsync("available");
        await Expect(Card("w-a100")).ToHaveClassAsync(new System.Text.RegularExpressions.Regex("status-available"));
        await Expect(Card("w-a100").Locator(".connected")).ToHaveTextAsync("just now");

        await Expect(Card("w-rtx4090").Locator(".gpu-model")).ToHaveTextAsync("NVIDIA GeForce RTX 4090");
        await Expect(Card("w-rtx4090").Locator(".gpu-memory")).ToHaveTextAsync("24 GB");
        await Expect(Card("w-rtx4090").Locator(".hostname")).ToHaveTextAsync("lab-desktop-7");
        await Expect(Card("w-rtx4090")).ToHaveClassAsync(new System.Text.RegularExpressions.Regex("status-reserved"));

        await Expect(Card("w-t4").Locator(".gpu-model")).ToHaveTextAsync("Tesla T4");
        await Expect(Card("w-t4")).ToHaveClassAsync(new System.Text.RegularExpressions.Regex("status-busy"));
        await Expect(Card("w-t4").Locator(".job-package")).ToHaveTextAsync("mice_topdown.slp.training_job.zip");
        await Expect(Card("w-t4").Locator(".job-config")).ToHaveTextAsync("config 2 of 2 · centered_instance.json");
        await Expect(Card("w-t4").Locator(".job-epoch")).ToHaveTextAsync("epoch 37 of 100");
        await Expect(Card("w-t4").Locator(".job-running")).ToHaveTextAsync("running 42 min");
        var sparkline = await Card("w-t4").Locator("polyline.spark").GetAttributeAsync("points");
        Assert.Equal(15, sparkline!.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length);

        // The token left the address bar once the page had read it.
        Assert.DoesNotContain(_token, _page.Url, StringComparison.Ordinal);
        await Expect(_page.Locator("#summary")).ToContainTextAsync("3 workers");

        var artifacts = Path.Combine(AppContext.BaseDirectory, "artifacts");
        Directory.CreateDirectory(artifacts);
        var screenshot = Path.Combine(artifacts, "monitor.png");
        await _page.ScreenshotAsync(new PageScreenshotOptions { Path = screenshot, FullPage = true });
        Assert.True(new FileInfo(screenshot).Length > 10_000);
        AssertNoConsoleErrors();
    }

    [Fact]
    public async Task A_status_change_recolours_the_card_within_a_second()
    {
        await using var worker = await _server.RegisterWorkerAsync(_roomId, _token, "w-status", SignalingTestServer.WorkerProperties("NVIDIA A100", 40960, "node-a"));
        await _page.GotoAsync(MonitorUrl(_token));
        await Expect(Card("w-status")).ToHaveClassAsync(new System.Text.RegularExpressions.Regex("status-available"));

        foreach (var status in new[] { "reserved", "busy", "available" })
        {
            var clock = Stopwatch.StartNew();
            await worker.UpdatePropertiesAsync(new JsonObject { ["status"] = status });
            await Expect(Card("w-status")).ToHaveClassAsync(new System.Text.RegularExpressions.Regex("status-" + status),
                new LocatorAssertionsToHaveClassOptions { Timeout = WithinOneSecondMs });
            await Expect(Card("w-status").Locator(".status-badge")).ToHaveTextAsync(status, new LocatorAssertionsToHaveTextOptions { Timeout = 100 });
            Assert.True(clock.ElapsedMilliseconds < 1000, $"{status} took {clock.ElapsedMilliseconds} ms");
        }
        AssertNoConsoleErrors();
    }

    [Fact]
    public async Task New_and_departed_workers_appear_and_disappear_within_a_second()
    {
        await using var staying = await _server.RegisterWorkerAsync(_roomId, _token, "w-staying", SignalingTestServer.WorkerProperties("NVIDIA A100", 40960, "node-a"));
        await _page.GotoAsync(MonitorUrl(_token));
        await Expect(_page.Locator("article.card")).ToHaveCountAsync(1);

        var leaving = await _server.RegisterWorkerAsync(_roomId, _token, "w-leaving", SignalingTestServer.WorkerProperties("Tesla T4", 15360, "node-t4"));
        await Expect(Card("w-leaving")).ToBeVisibleAsync(new LocatorAssertionsToBeVisibleOptions { Timeout = WithinOneSecondMs });

        var clock = Stopwatch.StartNew();
        await leaving.DisposeAsync();
        await Expect(Card("w-leaving")).ToHaveCountAsync(0, new LocatorAssertionsToHaveCountOptions { Timeout = WithinOneSecondMs });
        Assert.True(clock.ElapsedMilliseconds < 1000, $"the card went after {clock.ElapsedMilliseconds} ms");
        await Expect(Card("w-staying")).ToBeVisibleAsync();
        AssertNoConsoleErrors();
    }

    [Fact]
    public async Task The_epoch_counter_follows_the_published_job_progress()
    {
        await using var worker = await _server.RegisterWorkerAsync(_roomId, _token, "w-train", SignalingTestServer.WorkerProperties("NVIDIA RTX A6000", 49140, "node-6000"));
        await _page.GotoAsync(MonitorUrl(_token));
        await Expect(Card("w-train").Locator(".idle")).ToBeVisibleAsync();

        var losses = new JsonArray();
        for (var epoch = 1; epoch <= 3; epoch++)
        {
            losses.Add(1.0 / epoch);
            await worker.UpdatePropertiesAsync(new JsonObject
            {
                ["status"] = "busy",
                ["job"] = new JsonObject
                {
                    ["job_id"] = "job-1", ["package_name"] = "flies.slp.training_job.zip", ["config_index"] = 1, ["config_count"] = 1,
                    ["epoch"] = epoch, ["epoch_count"] = 3, ["loss"] = 1.0 / epoch, ["loss_history"] = losses.DeepClone(),
                },
            });
            await Expect(Card("w-train").Locator(".job-epoch")).ToHaveTextAsync($"epoch {epoch} of 3",
                new LocatorAssertionsToHaveTextOptions { Timeout = WithinOneSecondMs });
        }
        await Expect(Card("w-train").Locator(".job-progress")).ToHaveAttributeAsync("max", "1");
        Assert.Equal(1.0, await Card("w-train").Locator(".job-progress").EvaluateAsync<double>("bar => bar.value"), 3);

        // Job done: the worker clears its job and returns to available.
        await worker.UpdatePropertiesAsync(new JsonObject { ["status"] = "available", ["job"] = null });
        await Expect(Card("w-train").Locator(".job")).ToBeHiddenAsync(new LocatorAssertionsToBeHiddenOptions { Timeout = WithinOneSecondMs });
        await Expect(Card("w-train").Locator(".idle")).ToBeVisibleAsync();
        AssertNoConsoleErrors();
    }

    [Fact]
    public async Task A_wrong_token_shows_a_clear_error_and_no_room_data()
    {
        await using var worker = await _server.RegisterWorkerAsync(_roomId, _token, "w-hidden", SignalingTestServer.WorkerProperties("NVIDIA H100", 81559, "secret-host"));
        await _page.GotoAsync(MonitorUrl(_token + "0"));

        await Expect(_page.Locator("#error")).ToBeVisibleAsync();
        await Expect(_page.Locator("#error")).ToContainTextAsync("Access denied");
        await Expect(_page.Locator("#connection")).ToHaveAttributeAsync("data-state", "failed");
        await Expect(_page.Locator("#credentials")).ToBeVisibleAsync();
        await Expect(_page.Locator("article.card")).ToHaveCountAsync(0);
        var html = await _page.ContentAsync();
        Assert.DoesNotContain("secret-host", html, StringComparison.Ordinal);
        Assert.DoesNotContain("w-hidden", html, StringComparison.Ordinal);

        // The right token typed into the form opens the room.
        await _page.Locator("#token-input").FillAsync(_token);
        await _page.Locator("#credentials button").ClickAsync();
        await Expect(Card("w-hidden")).ToBeVisibleAsync();
        await Expect(_page.Locator("#error")).ToBeHiddenAsync();
    }

    [Fact]
    public async Task Markup_in_worker_metadata_renders_as_text()
    {
        const string hostile = "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">";
        var properties = SignalingTestServer.WorkerProperties("<b>GPU</b>", 1024, "<i>host</i>", name: hostile);
        properties["job"] = new JsonObject { ["package_name"] = "<svg onload=\"window.__pwned = 3\">", ["epoch"] = 1, ["epoch_count"] = 2 };
        await using var worker = await _server.RegisterWorkerAsync(_roomId, _token, "w-xss", properties);

        await _page.GotoAsync(MonitorUrl(_token));
        await Expect(Card("w-xss").Locator(".name")).ToHaveTextAsync(hostile);
        await Expect(Card("w-xss").Locator(".gpu-model")).ToHaveTextAsync("<b>GPU</b>");
        await Expect(Card("w-xss").Locator(".hostname")).ToHaveTextAsync("<i>host</i>");
        await Expect(Card("w-xss").Locator(".job-package")).ToHaveTextAsync("<svg onload=\"window.__pwned = 3\">");
        Assert.Equal(0, await Card("w-xss").Locator("script, img, b, i, svg:not(.sparkline)").CountAsync());
        Assert.Null(await _page.EvaluateAsync<int?>("() => window.__pwned ?? null"));
        AssertNoConsoleErrors();
    }

    [Fact]
    public async Task The_page_is_served_with_a_strict_policy_and_no_inline_script()
    {
        var response = await _page.GotoAsync(new Uri(_server.BaseAddress, "/monitor").ToString());
        Assert.NotNull(response);
        var headers = await response.AllHeadersAsync();
        Assert.Equal(MonitorService.ContentSecurityPolicy, headers["content-security-policy"]);
        Assert.Equal("nosniff", headers["x-content-type-options"]);
        Assert.Equal(0, await _page.Locator("script:not([src])").CountAsync());
        await Expect(_page.Locator("#credentials")).ToBeVisibleAsync();
        await Expect(_page.Locator("#room-input")).ToBeFocusedAsync();

        // An inline script injected into the page is refused by the policy.
        await _page.EvaluateAsync("() => { const s = document.createElement('script'); s.textContent = 'window.__inline = 1'; document.body.append(s); }");
        Assert.Null(await _page.EvaluateAsync<int?>("() => window.__inline ?? null"));
    }

    [Fact]
    public async Task The_page_shows_a_lost_server_and_comes_back_live_when_it_returns()
    {
        var database = Path.Combine(Path.GetTempPath(), $"sleaprtc-monitor-{Guid.NewGuid():N}.db");
        try
        {
            var first = await SignalingTestServer.StartAsync(databasePath: database);
            var port = first.Host.Port;
            var (roomId, token) = await first.CreateRoomAsync();
            var worker = await first.RegisterWorkerAsync(roomId, token, "w-survivor", SignalingTestServer.WorkerProperties("NVIDIA L40S", 46068, "node-l40s"));
            await _page.GotoAsync(MonitorLinks.BuildUrl(first.Host.LocalUrl, roomId, token));
            await Expect(Card("w-survivor")).ToHaveClassAsync(new System.Text.RegularExpressions.Regex("status-available"));

            await first.DisposeAsync();
            await worker.DisposeAsync();
            await Expect(_page.Locator("#connection")).ToHaveAttributeAsync("data-state", "reconnecting");
            await Expect(Card("w-survivor")).ToHaveClassAsync(new System.Text.RegularExpressions.Regex("stale"));
            await Expect(Card("w-survivor").Locator(".status-badge")).ToHaveTextAsync("offline");

            // Same port, same room database: the room and its token survive the restart.
            await using var second = await SignalingTestServer.StartAsync(port: port, databasePath: database);
            await using var back = await second.RegisterWorkerAsync(roomId, token, "w-survivor", SignalingTestServer.WorkerProperties("NVIDIA L40S", 46068, "node-l40s"));
            await Expect(_page.Locator("#connection")).ToHaveAttributeAsync("data-state", "live", new LocatorAssertionsToHaveAttributeOptions { Timeout = 15_000 });
            await Expect(Card("w-survivor")).Not.ToHaveClassAsync(new System.Text.RegularExpressions.Regex("stale"));
            await Expect(Card("w-survivor").Locator(".status-badge")).ToHaveTextAsync("available");
        }
        finally
        {
            foreach (var file in Directory.GetFiles(Path.GetTempPath(), Path.GetFileName(database) + "*")) File.Delete(file);
        }
    }
}
