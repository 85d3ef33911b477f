using System.Diagnostics;
using System.Text;

namespace SleapRtc.Worker.Training;

/// <summary>One piece of trainer output: a line ended by '\n', a progress-bar update ended by '\r', or the tail.</summary>
public readonly record struct TrainerOutput(string Text, bool IsCarriageReturnUpdate);

/// <summary>Runs "sleap-nn train" for one config the way classic workers do, streaming its output.</summary>
public static class TrainerProcess
{
    public const string EnvironmentVariable = "SLEAP_RTC_SLEAP_NN";
    /// <summary>Classic flushes a line with no terminator after this many characters.</summary>
    private const int MaxSegmentChars = 64 * 1024;

    /// <summary>The trainer runs in the package folder and reads its configs from there.</summary>
    public const string ConfigDirectory = ".";

    /// <summary>The classic command line (§5.2): config, run name and checkpoint dir overrides, ZMQ ports, no loader workers;
    /// then the job's training overrides (a run_name override replaces the classic one).</summary>
    public static IReadOnlyList<string> BuildArguments(string configName, string outputDirectory, IReadOnlyList<string>? overrides = null)
    {
        var extra = overrides ?? Array.Empty<string>();
        var arguments = new List<string>
        {
            "train",
            "--config-name", configName,
            "--config-dir", ConfigDirectory,
            $"trainer_config.ckpt_dir={outputDirectory}",
        };
        if (!extra.Any(o => o.StartsWith(TrainingOverrideRules.RunNameKey + "=", StringComparison.Ordinal)))
            arguments.Add($"{TrainingOverrideRules.RunNameKey}={TrainScript.ConfigStem(configName)}");
        arguments.AddRange(new[]
        {
            "trainer_config.zmq.controller_port=9000",
            "trainer_config.zmq.publish_port=9001",
            "trainer_config.train_data_loader.num_workers=0",
            "trainer_config.val_data_loader.num_workers=0",
        });
        arguments.AddRange(extra);
        return arguments;
    }

    /// <summary>Runs to completion and returns the exit code; cancellation kills the whole process tree.</summary>
    /// <param name="stopEarly">A graceful stop (classic JOB_STOP): the trainer gets SIGINT, ends its epoch loop and keeps its best
    /// checkpoint; if it is still running after <paramref name="stopGrace"/> it is killed. Returns its exit code either way.</param>
    public static async Task<int> RunAsync(
        string trainerPath, IReadOnlyList<string> arguments, string workingDirectory,
        Action<TrainerOutput> onOutput, CancellationToken cancellationToken,
        ProcessPriorityClass priority = ProcessPriorityClass.Normal,
        CancellationToken stopEarly = default, TimeSpan? stopGrace = null)
    {
        var start = new ProcessStartInfo(trainerPath)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            CreateNoWindow = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        start.Environment["PYTHONUNBUFFERED"] = "1";

        using var process = new Process { StartInfo = start };
        process.Start();
        Deprioritize(process, priority);
        var outputGate = new object();
        void Emit(TrainerOutput o) { lock (outputGate) onOutput(o); }
        var stdout = PumpAsync(process.StandardOutput, Emit);
        var stderr = PumpAsync(process.StandardError, Emit);

        using var watchdog = new CancellationTokenSource();
        using (cancellationToken.Register(() => KillTree(process)))
        using (stopEarly.Register(() =>
        {
            ProcessSignals.InterruptTree(process);
            try { watchdog.CancelAfter(stopGrace ?? DefaultStopGrace); } catch (ObjectDisposedException) { }
        }))
        using (watchdog.Token.Register(() => KillTree(process)))
        {
            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        }
        await Task.WhenAll(stdout, stderr).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        return process.ExitCode;
    }

    /// <summary>
    /// The trainer runs below the worker's own priority by default: a trainer (and its data loaders, which inherit the
    /// priority) can keep every core busy, and the worker must still answer heartbeats, stream logs and progress, and
    /// connect the next job's client promptly. The scheduler only applies it under contention: on a box where nothing
    /// else wants the CPU the trainer runs as fast as at normal priority (on Linux BelowNormal is nice 10).
    /// </summary>
    public const ProcessPriorityClass DefaultPriority = ProcessPriorityClass.BelowNormal;

    private static void Deprioritize(Process process, ProcessPriorityClass priority)
    {
        if (priority == ProcessPriorityClass.Normal) return;
        // Lowering a priority needs no privilege; a trainer that already exited has nothing left to lower.
        try { process.PriorityClass = priority; }
        catch (InvalidOperationException) { }
        catch (System.ComponentModel.Win32Exception) { }
    }

    /// <summary>How long a trainer asked to stop early may take before it is killed (classic's watchdog waits 30 s).</summary>
    public static readonly TimeSpan DefaultStopGrace = TimeSpan.FromSeconds(30);

    public static void KillTree(Process process)
    {
        try
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException) { }
        catch (System.ComponentModel.Win32Exception) { }
    }

    private static async Task PumpAsync(StreamReader reader, Action<TrainerOutput> emit)
    {
        var buffer = new char[4096];
        var segment = new StringBuilder();
        var previousWasCarriageReturn = false;
        while (true)
        {
            int read;
            try { read = await reader.ReadAsync(buffer.AsMemory()).ConfigureAwait(false); }
            catch (IOException) { break; }
            if (read == 0) break;
            for (var i = 0; i < read; i++)
            {
                var c = buffer[i];
                // "\r\n" is one line end, not a progress update followed by an empty line.
                if (c == '\n' && previousWasCarriageReturn && segment.Length == 0)
                {
                    previousWasCarriageReturn = false;
                    continue;
                }
                previousWasCarriageReturn = c == '\r';
                if (c == '\n' || c == '\r')
                {
                    emit(new TrainerOutput(segment.ToString(), c == '\r'));
                    segment.Clear();
                }
                else
                {
                    segment.Append(c);
                    if (segment.Length >= MaxSegmentChars)
                    {
                        emit(new TrainerOutput(segment.ToString(), true));
                        segment.Clear();
                    }
                }
            }
        }
        if (segment.Length > 0) emit(new TrainerOutput(segment.ToString(), false));
    }
}
