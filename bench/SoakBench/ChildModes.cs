using System.Globalization;
using System.Net;
using System.Runtime;
using SleapRtc.Client.Jobs;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Signaling.Server;
using SleapRtc.WebRtc;
using SleapRtc.WebRtc.PeerConnection;
using SleapRtc.Worker;

namespace SleapRtc.Soak;

/// <summary>
/// The child modes of this program. Each prints "READY ..." when it serves, then one line per event, and
/// stops when its stdin closes (or dies to kill -9, which is what the fault tests do to it).
/// </summary>
public static class ChildModes
{
    public static readonly PeerConnectionOptions Loopback = new() { IncludeLoopback = true, LocalAddresses = new[] { IPAddress.Loopback } };

    public static async Task<int> RunAsync(string[] args) => args[0] switch
    {
        "server" => args.Length > 1 ? await InstanceAsync(args[1], args[2], args[3], args[4], args.Length > 5 ? args[5] : null).ConfigureAwait(false)
            : await ServerAsync().ConfigureAwait(false),
        "worker" => await WorkerAsync(args[1], args[2], args[3], args[4], args[5]).ConfigureAwait(false),
        "client" => await ClientAsync(args[1], args[2], args[3], args[4], args[5], int.Parse(args[6], CultureInfo.InvariantCulture),
            args.Length > 7 ? args[7] : null).ConfigureAwait(false),
        _ => 2,
    };

    private const int MaxConnectRetries = 3;

    /// <summary>How long a soak worker keeps a finished job's results (its folder) for collection.</summary>
    public static readonly TimeSpan ResultRetention = TimeSpan.FromSeconds(30);

    private static string OneLine(string text) => text.Replace('\r', ' ').Replace('\n', ' ');

    public static bool IsChildMode(string[] args) => args.Length > 0 && args[0] is "server" or "worker" or "client";

    /// <summary>"server": a signaling server on loopback with one room; READY port room token.</summary>
    private static async Task<int> ServerAsync()
    {
        await using var server = await SignalingServerHost.StartAsync(new SignalingServerOptions
        {
            Port = 0, ListenAddress = "127.0.0.1", DatabasePath = ":memory:", EnableStun = false,
        }).ConfigureAwait(false);
        var room = await server.CreateRoomAsync("soak", null).ConfigureAwait(false);
        Console.WriteLine($"READY {server.Port} {room.RoomId} {room.Token}");
        await ServeUntilStdinClosesAsync().ConfigureAwait(false);
        return 0;
    }

    /// <summary>
    /// "server port database room token [redis]": one instance of several sharing the database file (rooms, id-token key)
    /// or, given a Redis URL, sharing that Redis (the database is then unused); it serves the given room (created when
    /// new); READY port, then QUEUE once it runs the shared job queue. SIGTERM drains it (its peers move to the other
    /// instances), stdin closing stops it at once. Presence is stamped every 0.5 s and expires after 3 s, so tests see a
    /// killed instance's peers go soon.
    /// </summary>
    private static async Task<int> InstanceAsync(string port, string database, string roomId, string token, string? redis)
    {
        await using var server = await SignalingServerHost.StartAsync(new SignalingServerOptions
        {
            Port = int.Parse(port, CultureInfo.InvariantCulture), ListenAddress = "127.0.0.1", DatabasePath = database, EnableStun = false,
            Redis = redis, ClusterHeartbeatInterval = TimeSpan.FromMilliseconds(500), ClusterPresenceTtl = TimeSpan.FromSeconds(3),
            DrainTimeout = TimeSpan.FromSeconds(20),
            Log = new SleapRtc.Protocol.Logging.TextWriterLogSink(Console.Error, SleapRtc.Protocol.Logging.LogLevel.Information),
        }).ConfigureAwait(false);
        if (await server.GetRoomAsync(roomId).ConfigureAwait(false) is null)
        {
            try { await server.CreateRoomAsync("instances", null, roomId: roomId, token: token).ConfigureAwait(false); }
            catch (InvalidOperationException) { } // another instance created it meanwhile
        }
        using var drainOnSigterm = server.DrainOnTerminationSignal();
        Console.WriteLine($"READY {server.Port}");
        _ = Task.Run(async () =>
        {
            while (!server.RunsJobQueue && !server.Completion.IsCompleted) await Task.Delay(100).ConfigureAwait(false);
            if (server.RunsJobQueue) Console.WriteLine("QUEUE");
        });
        // Console.In reads synchronously: on a pool thread, so the drain's end is seen while stdin stays open.
        await Task.WhenAny(Task.Run(ServeUntilStdinClosesAsync), server.Completion).ConfigureAwait(false);
        if (server.Completion.IsCompleted) Console.WriteLine("DRAINED");
        return 0;
    }

    /// <summary>"worker server room token workdir trainer": a WorkerHost; READY peer id, then STATUS s and JOB end lines.</summary>
    private static async Task<int> WorkerAsync(string server, string roomId, string token, string workDirectory, string trainer)
    {
        await using var worker = await WorkerHost.StartAsync(new WorkerOptions
        {
            Server = server, RoomId = roomId, Token = token, WorkingDirectory = workDirectory, SleapNnPath = trainer,
            NvidiaSmiPath = "/nonexistent/nvidia-smi", PeerConnectionFactory = new RtcPeerConnectionFactory(), PeerConnection = Loopback,
            ProgressPublishInterval = TimeSpan.FromMilliseconds(200),
            // The soak's clients take their results back at once: what is kept for a later collection expires soon
            // (after the download: kept results are the job's folder), so any job folder found after that is one
            // the worker failed to remove.
            ResultRetention = ResultRetention, ResultSweepInterval = TimeSpan.FromSeconds(1),
        }, CancellationToken.None).ConfigureAwait(false);
        worker.StatusChanged += s => Console.WriteLine("STATUS " + s);
        worker.ProgressChanged += p => { if (p.Phase == "training" && p.Epoch >= 1) Console.WriteLine("EPOCH " + p.Epoch.ToString(CultureInfo.InvariantCulture)); };
        worker.JobCompleted += o => Console.WriteLine($"JOB {o.End} {o.Error}");
        worker.LogLine += l => { if (l.StartsWith("Reconnected", StringComparison.Ordinal)) Console.WriteLine("RECONNECTED"); };
        Console.WriteLine("READY " + worker.Session.PeerId);
        await ServeUntilStdinClosesAsync().ConfigureAwait(false);
        return 0;
    }

    /// <summary>
    /// Reads stdin until it closes (the stop request). "GC" asks for a full, blocking, compacting collection (the
    /// large object heap included) and is answered "HEAP managed-bytes committed-bytes jitted-methods", so the soak
    /// can tell what the process still holds from what the collector merely had not collected yet.
    /// </summary>
    private static async Task ServeUntilStdinClosesAsync()
    {
        while (await Console.In.ReadLineAsync().ConfigureAwait(false) is { } command)
        {
            if (command != "GC") continue;
            GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            var info = GC.GetGCMemoryInfo(GCKind.FullBlocking);
            // The heap as that compacting collection left it. GC.GetTotalMemory came back negative (-1.6 MB) in workers
            // since the transfer code of issue 16 (a runtime accounting quirk), which broke the samples.
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"HEAP {info.HeapSizeBytes - info.FragmentedBytes} {info.TotalCommittedBytes} {System.Runtime.JitInfo.GetCompiledMethodCount()}"));
        }
    }

    /// <summary>
    /// "client server room token package outroot jobs [worker]": that many jobs back to back, each to the best
    /// available worker (or the one given); all workers busy is waited out, not counted as a failure.
    /// READY pid, then PHASE p while a job runs, JOB ok seconds / JOB failed message, and DONE.
    /// </summary>
    private static async Task<int> ClientAsync(string server, string roomId, string token, string package, string outRoot, int jobs, string? workerId)
    {
        var factory = new RtcPeerConnectionFactory();
        var random = new Random();
        Console.WriteLine("READY " + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        for (var job = 1; job <= jobs; job++)
        {
            var output = Path.Combine(outRoot, "job-" + job.ToString(CultureInfo.InvariantCulture));
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var connectRetries = 0;
            while (true)
            {
                var submission = new TrainingSubmission(new SubmissionOptions
                {
                    PackagePath = package, OutputPath = output, RoomId = roomId, Token = token, Server = server,
                    WorkerId = workerId, AutoSelect = workerId is null, PeerConnectionFactory = factory, PeerConnection = Loopback,
                });
                var phase = "";
                submission.ProgressChanged += p =>
                {
                    var now = p.Phase.ToString().ToLowerInvariant();
                    if (now == phase) return;
                    phase = now;
                    Console.WriteLine("PHASE " + now + (p.Job is { Epoch: > 0 } j ? " " + j.Epoch.ToString(CultureInfo.InvariantCulture) : ""));
                };
                try
                {
                    var result = await submission.RunAsync(CancellationToken.None).ConfigureAwait(false);
                    Console.WriteLine(result.Status == "Succeeded"
                        ? "JOB ok " + clock.Elapsed.TotalSeconds.ToString("0.000", CultureInfo.InvariantCulture)
                        : "JOB failed status " + result.Status);
                    break;
                }
                catch (Exception e) when (e is NoWorkersAvailableException or WorkerBusyException)
                {
                    await Task.Delay(50 + random.Next(200)).ConfigureAwait(false);
                }
                catch (Exception e) when (phase is "discovering" or "connecting" && connectRetries++ < MaxConnectRetries)
                {
                    // No job started: the connection itself failed (a DTLS handshake past its timeout on an
                    // overloaded box). Counted and reported by the soak, then tried again.
                    Console.WriteLine($"RETRY {e.GetType().Name}: {OneLine(e.Message)}");
                }
                catch (Exception e)
                {
                    Console.WriteLine($"JOB failed {e.GetType().Name}: {OneLine(e.Message)}");
                    break;
                }
            }
            // The models came back; the soak only keeps count of them.
            if (Directory.Exists(output)) Directory.Delete(output, recursive: true);
        }
        Console.WriteLine("DONE");
        await Console.In.ReadToEndAsync().ConfigureAwait(false);
        return 0;
    }
}
