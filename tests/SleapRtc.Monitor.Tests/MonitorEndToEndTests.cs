using System.IO.Compression;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using SleapRtc.Client.Jobs;
using SleapRtc.Signaling.Monitor;
using SleapRtc.WebRtc;
using SleapRtc.WebRtc.PeerConnection;
using SleapRtc.Worker;
using static Microsoft.Playwright.Assertions;

namespace SleapRtc.Monitor.Tests;

/// <summary>
/// The whole path the monitor exists for: a real worker (GPU from a recorded nvidia-smi, the stand-in trainer)
/// runs a job a real client submitted over the managed WebRTC stack, and the page follows it live.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class MonitorEndToEndTests(BrowserFixture browser) : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);
    private static readonly PeerConnectionOptions Loopback = new() { IncludeLoopback = true, LocalAddresses = [IPAddress.Loopback] };

    private SignalingTestServer _server = null!;
    private IBrowserContext _context = null!;
    private readonly ScratchFolder _scratch = new("sleaprtc-monitor-e2e");

    public async Task InitializeAsync()
    {
        _server = await SignalingTestServer.StartAsync();
        _context = await browser.Browser.NewContextAsync();
    }

    public async Task DisposeAsync()
    {
        await _context.CloseAsync();
        await _server.DisposeAsync();
        _scratch.Dispose();
    }

    [Fact]
    public async Task A_real_training_job_advances_on_the_card_epoch_by_epoch()
    {
        // Slow enough per epoch for the page to show several distinct epochs; the worker publishes progress at
        // most every 100 ms here (2 a second by default).
        Environment.SetEnvironmentVariable("SLEAP_NN_STANDIN_EPOCH_SECONDS", "0.6");
        var (roomId, token) = await _server.CreateRoomAsync();
        var transport = new RtcPeerConnectionFactory();
        await using var worker = await WorkerHost.StartAsync(new WorkerOptions
        {
            Server = _server.Host.LocalUrl,
            RoomId = roomId,
            Token = token,
            Name = "a6000-box",
            GpuId = 1,
            NvidiaSmiPath = RepoFixtures.NvidiaSmi,
            SleapNnPath = RepoFixtures.SleapNn,
            WorkingDirectory = Path.Combine(_scratch.Path, "worker"),
            PeerConnectionFactory = transport,
            PeerConnection = Loopback,
            ProgressPublishInterval = TimeSpan.FromMilliseconds(100),
        }, CancellationToken.None).WaitAsync(Wait);

        var page = await _context.NewPageAsync();
        page.SetDefaultTimeout(15_000);
        await page.GotoAsync(MonitorLinks.BuildUrl(_server.Host.LocalUrl, roomId, token));
        var card = page.Locator($"article.card[data-peer-id='{worker.Session.PeerId}']");
        await Expect(card.Locator(".name")).ToHaveTextAsync("a6000-box");
        await Expect(card.Locator(".gpu-model")).ToHaveTextAsync("NVIDIA RTX A6000");
        await Expect(card.Locator(".gpu-memory")).ToHaveTextAsync("48 GB");
        await Expect(card.Locator(".status-badge")).ToHaveTextAsync("available");

        const int Epochs = 6;
        var package = BuildPackage("mice_centroid", Epochs);
        var submission = new TrainingSubmission(new SubmissionOptions
        {
            PackagePath = package,
            OutputPath = Path.Combine(_scratch.Path, "models"),
            RoomId = roomId,
            Token = token,
            Server = _server.Host.LocalUrl,
            WorkerId = worker.Session.PeerId,
            PeerConnectionFactory = transport,
            PeerConnection = Loopback,
        });
        var running = submission.RunAsync(CancellationToken.None);

        // Should the submission itself fail (connection, transfer), report that rather than a page timeout.
        await WhileRunningAsync(running, Expect(card).ToHaveClassAsync(new Regex("status-busy")));
        // The worker publishes the uploaded package's name with its progress.
        await Expect(card.Locator(".job-package")).ToHaveTextAsync(new Regex("mice_centroid"));
        var first = await WhileRunningAsync(running, ReadEpochAsync(card, Epochs, minimum: 1));
        var later = await WhileRunningAsync(running, ReadEpochAsync(card, Epochs, minimum: first + 1));
        Assert.True(later > first, $"epoch went from {first} to {later}");
        Assert.NotEqual("", await card.Locator("polyline.spark").GetAttributeAsync("points") ?? "");

        var result = await running.WaitAsync(Wait);
        Assert.Equal("Succeeded", result.Status);
        await Expect(card.Locator(".status-badge")).ToHaveTextAsync("available");
        await Expect(card.Locator(".job")).ToBeHiddenAsync();
    }

    private static async Task WhileRunningAsync(Task<SleapRtc.TrainingResult> running, Task step) =>
        await WhileRunningAsync(running, step.ContinueWith(t => { t.GetAwaiter().GetResult(); return 0; }, TaskScheduler.Default));

    private static async Task<T> WhileRunningAsync<T>(Task<SleapRtc.TrainingResult> running, Task<T> step)
    {
        if (await Task.WhenAny(step, running) == running && running.IsFaulted) await running;
        return await step;
    }

    /// <summary>Waits for the card to show "epoch e of E" with e at least <paramref name="minimum"/>.</summary>
    private static async Task<int> ReadEpochAsync(ILocator card, int epochs, int minimum)
    {
        var pattern = new Regex($"^epoch (\\d+) of {epochs}$");
        var deadline = DateTime.UtcNow + Wait;
        while (DateTime.UtcNow < deadline)
        {
            var text = await card.Locator(".job-epoch").TextContentAsync() ?? "";
            var match = pattern.Match(text);
            if (match.Success && int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) is var epoch && epoch >= minimum) return epoch;
            await Task.Delay(50);
        }
        throw new TimeoutException($"the card never showed epoch {minimum} or later of {epochs}");
    }

    /// <summary>A package shaped like SLEAP's export: folder/train-script.sh, one config, a labels file.</summary>
    private string BuildPackage(string name, int epochs)
    {
        var path = Path.Combine(_scratch.Path, name + ".slp.training_job.zip");
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        Write(zip, $"{name}/centroid.json", "{\"trainer_config\": {\"max_epochs\": " + epochs + "}}");
        Write(zip, $"{name}/train-script.sh", "#!/bin/bash\nsleap-nn train --config-name centroid.json --config-dir .\n");
        Write(zip, $"{name}/labels.v001.pkg.slp", new string('x', 64));
        return path;
    }

    private static void Write(ZipArchive zip, string name, string content)
    {
        using var stream = zip.CreateEntry(name).Open();
        stream.Write(Encoding.UTF8.GetBytes(content));
    }
}
