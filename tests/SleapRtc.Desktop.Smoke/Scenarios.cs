using System;
using System.IO;
using System.Linq;
using System.Net;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Tasks;
using SleapRtc.Client.Jobs;
using SleapRtc.Signaling.Server;
using SleapRtc.WebRtc;
using SleapRtc.WebRtc.PeerConnection;
using SleapRtc.Worker;

namespace SleapRtc.Desktop.Smoke;

/// <summary>Kept apart from Main so no library type is touched before the module's resolver is installed.</summary>
internal static class Scenarios
{
    // No static fields of library types: Mono loads a field's type with its class, before the resolver exists.
    private static PeerConnectionOptions Loopback() => new() { IncludeLoopback = true, LocalAddresses = new[] { IPAddress.Loopback } };

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static async Task AllInOneAsync(string workDirectory, string packagePath, string sleapNn)
    {
        ReportOrigin(typeof(SignalingServerHost).Assembly);
        // A file database: SQLite's native library must load on this runtime, not only the in-memory store.
        var server = await SignalingServerHost.StartAsync(new SignalingServerOptions
        {
            Port = 0, ListenAddress = "127.0.0.1", DatabasePath = Path.Combine(workDirectory, "rooms.db"), EnableStun = false,
        }, CancellationToken.None).ConfigureAwait(false);
        Console.WriteLine($"SERVER ws://127.0.0.1:{server.Port}");
        try
        {
            var worker = await StartWorkerAsync($"ws://127.0.0.1:{server.Port}", workDirectory, sleapNn).ConfigureAwait(false);
            try
            {
                await SubmitAsync(worker.Session.SessionString, packagePath, Path.Combine(workDirectory, "models")).ConfigureAwait(false);
            }
            finally
            {
                await worker.StopAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            await server.StopAsync().ConfigureAwait(false);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static async Task WorkerAsync(string serverUrl, string workDirectory, string sleapNn)
    {
        ReportOrigin(typeof(WorkerHost).Assembly);
        var worker = await StartWorkerAsync(serverUrl, workDirectory, sleapNn).ConfigureAwait(false);
        worker.StatusChanged += status => Console.WriteLine("STATUS " + status);
        Console.WriteLine("SESSION " + worker.Session.SessionString);
        // Serves until the caller closes our stdin.
        await Task.Run(() => { while (Console.In.ReadLine() is not null) { } }).ConfigureAwait(false);
        await worker.StopAsync().ConfigureAwait(false);
        Console.WriteLine("STOPPED");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static async Task SubmitAsync(string sessionString, string packagePath, string outputDirectory)
    {
        ReportOrigin(typeof(TrainingSubmission).Assembly);
        var submission = new TrainingSubmission(new SubmissionOptions
        {
            PackagePath = packagePath,
            OutputPath = outputDirectory,
            SessionString = sessionString,
            PeerConnectionFactory = new RtcPeerConnectionFactory(),
            PeerConnection = Loopback(),
        });
        submission.LogLine += line => Console.WriteLine("LOG " + line);
        var uploadRate = 0.0;
        submission.ProgressChanged += progress =>
        {
            if (progress.Phase == SubmissionPhase.Uploading && progress.BytesDone == progress.BytesTotal) uploadRate = progress.MegabytesPerSecond;
        };
        var result = await submission.RunAsync(CancellationToken.None).ConfigureAwait(false);
        Console.WriteLine($"UPLOAD {uploadRate:F1} MB/s");
        var files = result.ModelPaths.SelectMany(p => Directory.Exists(p) ? Directory.GetFiles(p, "*", SearchOption.AllDirectories) : Array.Empty<string>()).ToArray();
        Console.WriteLine($"RESULT {result.Status} worker={result.WorkerId} uploaded={result.UploadedBytes} models={result.ModelPaths.Length} files={files.Length}");
        foreach (var model in result.ModelPaths) Console.WriteLine("MODEL " + model);
        if (result.Status != "Succeeded") throw new InvalidOperationException("training did not succeed: " + result.Status);
    }

    private static Task<WorkerHost> StartWorkerAsync(string serverUrl, string workDirectory, string sleapNn) =>
        WorkerHost.StartAsync(new WorkerOptions
        {
            Server = serverUrl,
            NvidiaSmiPath = "/nonexistent/nvidia-smi",
            SleapNnPath = sleapNn,
            WorkingDirectory = Path.Combine(workDirectory, "worker"),
            PeerConnectionFactory = new RtcPeerConnectionFactory(),
            PeerConnection = Loopback(),
        }, CancellationToken.None);

    /// <summary>Which build of the libraries this run uses, and from where: the caller asserts bin/desktop.</summary>
    private static void ReportOrigin(Assembly library)
    {
        var framework = library.GetCustomAttributes(typeof(System.Runtime.Versioning.TargetFrameworkAttribute), false)
            .OfType<System.Runtime.Versioning.TargetFrameworkAttribute>().FirstOrDefault()?.FrameworkName;
        Console.WriteLine($"LIBRARY {library.GetName().Name} {framework} {library.Location}");
    }
}
