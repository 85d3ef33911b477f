using System.Collections.Concurrent;
using System.Diagnostics;

namespace SleapRtc.PowerShell.Tests;

/// <summary>
/// Runs tests/SleapRtc.Desktop.Smoke (a .NET Framework 4.7.2 program) under Mono, the .NET Framework twin this
/// Linux box has: it loads bin/SleapRtc.dll the way Windows PowerShell 5.1 does, so every library type comes from
/// the netstandard2.0 builds in bin/desktop. The program is copied alone into an empty folder first, so nothing
/// beside it (no copied dll, no binding redirect) can stand in for the module's own resolution.
/// </summary>
internal sealed class DesktopProgram : IDisposable
{
    private readonly Process _process;
    private readonly BlockingCollection<string> _lines = new();
    private readonly ConcurrentQueue<string> _all = new();
    private readonly Task _pumps;

    private DesktopProgram(Process process)
    {
        _process = process;
        _pumps = Task.WhenAll(Pump(process.StandardOutput), Pump(process.StandardError));
        _ = _pumps.ContinueWith(_ => _lines.CompleteAdding(), TaskScheduler.Default);
    }

    public static string ProgramPath
    {
        get
        {
            // Same configuration as this test assembly (bin/<Configuration>/net10.0/).
            var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;
            return Path.Combine(RepoPaths.Root, "tests", "SleapRtc.Desktop.Smoke", "bin", configuration, "net472", "SleapRtc.Desktop.Smoke.exe");
        }
    }

    public static string Mono { get; } = new[] { "/usr/bin/mono", "/usr/local/bin/mono" }.FirstOrDefault(File.Exists)
        ?? throw new InvalidOperationException("Mono is needed to run the .NET Framework checks: apt-get install mono-devel (.ci/install-deps.sh does)");

    public IEnumerable<string> Output => _all;

    public static DesktopProgram Start(params string[] arguments)
    {
        var folder = TestEnvironment.NewDirectory("desktop-program");
        var program = Path.Combine(folder, Path.GetFileName(ProgramPath));
        File.Copy(ProgramPath, program);
        var start = new ProcessStartInfo(Mono)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("--debug");
        start.ArgumentList.Add(program);
        start.ArgumentList.Add(arguments[0]);
        start.ArgumentList.Add(Path.Combine(RepoPaths.Root, "bin"));
        foreach (var argument in arguments.Skip(1)) start.ArgumentList.Add(argument);
        // Windows finds SQLite's native library through the module's preload; Mono on Linux through the loader path.
        start.Environment["LD_LIBRARY_PATH"] = Path.Combine(RepoPaths.Root, "bin", "deps", "runtimes", "linux-x64", "native");
        return new DesktopProgram(Process.Start(start)!);
    }

    /// <summary>The first output line with the tag, without it; fails with the whole output on error or timeout.</summary>
    public string WaitFor(string tag, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (!_lines.TryTake(out var line, TimeSpan.FromMilliseconds(200)))
            {
                if (_lines.IsCompleted) break;
                continue;
            }
            if (line.StartsWith("ERROR ", StringComparison.Ordinal)) throw new InvalidOperationException("desktop program failed:\n" + Transcript());
            if (line.StartsWith(tag + " ", StringComparison.Ordinal)) return line.Substring(tag.Length + 1);
        }
        throw new TimeoutException($"no {tag} line from the desktop program:\n" + Transcript());
    }

    /// <summary>Closes stdin (the worker mode's stop signal) and waits for the exit code.</summary>
    public int Finish(TimeSpan timeout)
    {
        _process.StandardInput.Close();
        if (!_process.WaitForExit((int)timeout.TotalMilliseconds)) throw new TimeoutException("desktop program did not exit:\n" + Transcript());
        _pumps.Wait(timeout);
        return _process.ExitCode;
    }

    public string Transcript() => string.Join("\n", _all);

    private async Task Pump(StreamReader reader)
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            _all.Enqueue(line);
            if (!_lines.IsAddingCompleted) _lines.Add(line);
        }
    }

    public void Dispose()
    {
        try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }
}
