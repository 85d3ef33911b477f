using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO.Compression;
using System.Net;
using System.Text;
using SleapRtc.Client.Jobs;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Client;
using SleapRtc.WebRtc;
using SleapRtc.WebRtc.PeerConnection;
using SleapRtc.Worker;

/// <summary>
/// The queue end to end: our worker host (WorkerHost, as Start-SleapWorker runs it) with the stand-in trainer at 0 s
/// epochs, and one real queued submission per ticket (TrainingSubmission with -Queue, as Submit-SleapTraining -Queue
/// runs it): the ticket, the assignment push, the offer, the WebRTC connect on loopback, the hello and the upload.
/// Measures, for every upload that follows an earlier job on the same worker, the time from the worker turning
/// available (its status change, just before it publishes it) to the submission's first upload progress (FILE_META
/// and the first chunk handed to the data channel). Both ends are in this process, on one Stopwatch.
/// </summary>
internal static class EndToEnd
{
    public static async Task<bool> RunAsync(string url, int jobs, int workerCount)
    {
        var root = Path.Combine(Path.GetTempPath(), $"sleaprtc-queuebench-e2e-{Guid.NewGuid():N}");
        Directory.CreateDirectory(root);
        // The stand-in trainer: one epoch of no time, so a job is the trainer's start and exit.
        Environment.SetEnvironmentVariable("SLEAP_NN_STANDIN_EPOCH_SECONDS", "0");
        Environment.SetEnvironmentVariable("SLEAP_NN_STANDIN_EPOCHS", "1");
        var transport = new RtcPeerConnectionFactory();
        var loopback = new PeerConnectionOptions { IncludeLoopback = true, LocalAddresses = new[] { IPAddress.Loopback } };
        SleapRtc.Room room;
        await using (var admin = new SignalingClient(url)) room = await admin.CreateRoomAsync("queue-bench-e2e");
        var package = BuildPackage(root);

        // Tickets first, then the workers: every upload waits for a worker turning available, none for a ticket.
        var availableAt = new ConcurrentDictionary<string, long>();
        var jobsDone = new ConcurrentDictionary<string, int>();
        var latencies = new ConcurrentBag<double>();
        var parts = new ConcurrentBag<(double Assigned, double Connected, double Started)>();
        var firstUploads = 0;
        var submissions = Enumerable.Range(0, jobs).Select(i =>
        {
            var submission = new TrainingSubmission(new SubmissionOptions
            {
                PackagePath = package, OutputPath = Path.Combine(root, "out", i.ToString()), RoomId = room.RoomId, Token = room.Token, Server = url,
                Queue = new QueueOptions(), PeerConnectionFactory = transport, PeerConnection = loopback,
            });
            var seen = 0;
            long assignedAt = 0, openAt = 0;
            submission.StatusMessage += m =>
            {
                if (m.Contains(" got worker ")) assignedAt = Stopwatch.GetTimestamp();
                else if (m.StartsWith("Connection established")) openAt = Stopwatch.GetTimestamp();
            };
            submission.ProgressChanged += p =>
            {
                if (p.Phase != SubmissionPhase.Uploading || p.WorkerId is not { } worker || Interlocked.Exchange(ref seen, 1) == 1) return;
                var now = Stopwatch.GetTimestamp();
                // A worker's first upload follows its registration, not a job: not the figure.
                if (jobsDone.AddOrUpdate(worker, 1, (_, n) => n + 1) == 1 || !availableAt.TryGetValue(worker, out var since)) Interlocked.Increment(ref firstUploads);
                else
                {
                    latencies.Add(Stopwatch.GetElapsedTime(since, now).TotalMilliseconds);
                    // Where the time goes: the assignment reaching the submission, the connect, the hello and first chunk.
                    if (assignedAt > since && openAt > assignedAt)
                        parts.Add((Stopwatch.GetElapsedTime(since, assignedAt).TotalMilliseconds, Stopwatch.GetElapsedTime(assignedAt, openAt).TotalMilliseconds,
                            Stopwatch.GetElapsedTime(openAt, now).TotalMilliseconds));
                }
            };
            return submission;
        }).ToList();
        var clock = Stopwatch.StartNew();
        var running = submissions.Select(s => Task.Run(() => s.RunAsync(CancellationToken.None))).ToList();
        await using (var watcher = new SignalingClient(url))
        {
            var signIn = await watcher.AnonymousSignInAsync();
            await watcher.ConnectAsync(new RegistrationRequest(signIn.Username, room.RoomId, room.Token, signIn.IdToken, "client"));
            while ((await watcher.ListJobsAsync(null, JobStates.Queued)).Count < jobs) await Task.Delay(100);
        }
        Console.WriteLine($"end to end: {jobs} queued submissions in {clock.Elapsed.TotalSeconds:F1} s; starting {workerCount} workers");

        var workers = new List<WorkerHost>();
        for (var i = 0; i < workerCount; i++)
        {
            var worker = await WorkerHost.StartAsync(new WorkerOptions
            {
                Server = url, RoomId = room.RoomId, Token = room.Token, NvidiaSmiPath = "/nonexistent/nvidia-smi", SleapNnPath = StandIn(),
                WorkingDirectory = Path.Combine(root, $"worker-{i}"), PeerConnectionFactory = transport, PeerConnection = loopback,
            }, CancellationToken.None);
            var peerId = worker.Session.PeerId;
            worker.StatusChanged += status => { if (status == SleapRtc.WorkerStatus.Available) availableAt[peerId] = Stopwatch.GetTimestamp(); };
            workers.Add(worker);
        }
        clock.Restart();
        var results = await Task.WhenAll(running).WaitAsync(TimeSpan.FromMinutes(15));
        var seconds = clock.Elapsed.TotalSeconds;
        foreach (var worker in workers) await worker.StopAsync();

        var succeeded = results.Count(r => r.Status == "Succeeded");
        var sorted = latencies.Order().ToList();
        double Percentile(double p) => sorted.Count == 0 ? double.NaN : sorted[(int)Math.Min(sorted.Count - 1, Math.Round(p * (sorted.Count - 1)))];
        Console.WriteLine($"end to end: {succeeded}/{jobs} jobs Succeeded on {jobsDone.Count} workers in {seconds:F1} s ({jobs / seconds:F1} jobs/s)");
        Console.WriteLine($"worker available -> its next upload starting: p50 {Percentile(0.5):F1} ms, p90 {Percentile(0.9):F1} ms, " +
            $"p99 {Percentile(0.99):F1} ms, max {(sorted.Count > 0 ? sorted[^1] : double.NaN):F1} ms ({sorted.Count} samples; {firstUploads} first uploads not counted; target p50 < 50 ms)");
        if (!parts.IsEmpty)
        {
            double Median(IEnumerable<double> values) { var v = values.Order().ToList(); return v[v.Count / 2]; }
            Console.WriteLine($"  medians of its parts: available -> assignment at the submission {Median(parts.Select(p => p.Assigned)):F1} ms, " +
                $"-> data channel open {Median(parts.Select(p => p.Connected)):F1} ms, -> first upload progress {Median(parts.Select(p => p.Started)):F1} ms");
        }
        try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        return succeeded == jobs;
    }

    /// <summary>A package as SLEAP exports it: folder bench/ with train-script.sh, one config and a small labels file.</summary>
    private static string BuildPackage(string directory)
    {
        var path = Path.Combine(directory, "bench.zip");
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        void Add(string name, string text)
        {
            using var stream = zip.CreateEntry("bench/" + name).Open();
            stream.Write(Encoding.UTF8.GetBytes(text));
        }
        Add("train-script.sh", "#!/bin/bash\nsleap-nn train --config-name centroid.json --config-dir .\n");
        Add("centroid.json", "{\"trainer_config\": {\"max_epochs\": 1}}");
        Add("labels.v001.pkg.slp", new string('x', 20_000));
        return path;
    }

    private static string StandIn()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "SleapRtc.sln"))) dir = dir.Parent;
        return Path.Combine(dir?.FullName ?? throw new InvalidOperationException("SleapRtc.sln not found above the bench"), "tests", "fixtures", "sleap-nn");
    }
}
