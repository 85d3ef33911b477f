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

    /// <summary>The classic command line (§5.2): config, run name and checkpoint dir overrides, ZMQ ports, no loader workers.</summary>
    public static IReadOnlyList<string> BuildArguments(string configName, string outputDirectory) => new[]
    {
        "train",
        "--config-name", configName,
        "--config-dir", ConfigDirectory,
        $"trainer_config.ckpt_dir={outputDirectory}",
        $"trainer_config.run_name={TrainScript.ConfigStem(configName)}",
        "trainer_config.zmq.controller_port=9000",
        "trainer_config.zmq.publish_port=9001",
        "trainer_config.train_data_loader.num_workers=0",
        "trainer_config.val_data_loader.num_workers=0",
    };

    /// <summary>Runs to completion and returns the exit code; cancellation kills the whole process tree.</summary>
    public static async Task<int> RunAsync(
        string trainerPath, IReadOnlyList<string> arguments, string workingDirectory,
        Action<TrainerOutput> onOutput, CancellationToken cancellationToken)
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
        var outputGate = new object();
        void Emit(TrainerOutput o) { lock (outputGate) onOutput(o); }
        var stdout = PumpAsync(process.StandardOutput, Emit);
        var stderr = PumpAsync(process.StandardError, Emit);

        using (cancellationToken.Register(() => KillTree(process)))
        {
            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        }
        await Task.WhenAll(stdout, stderr).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        return process.ExitCode;
    }

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
