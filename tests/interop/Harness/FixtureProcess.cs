using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SleapRtc.Interop;

/// <summary>A fixture could not be started (not installed, wrong interpreter, not root, ...).</summary>
public sealed class FixtureUnavailableException(string message) : Exception(message);

/// <summary>A fixture reported an error event, exited, or did not answer in time.</summary>
public sealed class FixtureFailedException(string message) : Exception(message);

/// <summary>
/// One interop peer process speaking JSON lines: commands ({"cmd":…}) on stdin, events ({"ev":…}) on stdout.
/// Every wait is bounded; an "error" event or an early exit fails the wait at once with the fixture's own words.
/// </summary>
public sealed class FixtureProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<JsonObject> _pending = new();
    private readonly StringBuilder _stderrTail = new();
    private readonly object _gate = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _stdoutEnded;

    public string Name { get; }

    private FixtureProcess(string name, Process process)
    {
        Name = name;
        _process = process;
    }

    public int ProcessId => _process.Id;

    /// <summary>
    /// User + system CPU the process has used so far (null when it cannot be read). nsenter execs the peer, so the
    /// process id is the peer's own. On loopback the kernel also charges a sender for delivering its datagrams.
    /// </summary>
    public TimeSpan? CpuTime
    {
        get
        {
            try
            {
                _process.Refresh();
                return _process.TotalProcessorTime;
            }
            catch (Exception error) when (error is InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException)
            {
                return null;
            }
        }
    }

    public static async Task<FixtureProcess> StartAsync(string name, FixtureCommand command, NetworkNamespace? network,
        TimeSpan readyTimeout)
    {
        command.EnsureAvailable();
        var (fileName, arguments) = network is null ? (command.FileName, command.Arguments) : network.Wrap(command);
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = command.WorkingDirectory,
        };
        foreach (var argument in arguments) info.ArgumentList.Add(argument);
        foreach (var (key, value) in command.Environment) info.Environment[key] = value;
        Process process;
        try
        {
            process = Process.Start(info) ?? throw new FixtureUnavailableException($"{name}: could not start {fileName}");
        }
        catch (System.ComponentModel.Win32Exception error)
        {
            throw new FixtureUnavailableException($"{name}: cannot run {fileName} ({error.Message}); run .ci/install-deps.sh");
        }
        var fixture = new FixtureProcess(name, process);
        fixture.StartReaders();
        try
        {
            await fixture.WaitForAsync("ready", readyTimeout).ConfigureAwait(false);
        }
        catch (FixtureFailedException error)
        {
            await fixture.DisposeAsync().ConfigureAwait(false);
            throw new FixtureUnavailableException(error.Message);
        }
        return fixture;
    }

    private void StartReaders()
    {
        var stderrDrained = Task.Run(async () =>
        {
            while (await _process.StandardError.ReadLineAsync().ConfigureAwait(false) is { } line)
                lock (_gate) AppendStderr(line);
        });
        _ = Task.Run(async () =>
        {
            while (await _process.StandardOutput.ReadLineAsync().ConfigureAwait(false) is { } line)
            {
                JsonObject? parsed = null;
                try { parsed = JsonNode.Parse(line) as JsonObject; } catch (JsonException) { }
                lock (_gate)
                {
                    if (parsed is not null) _pending.Add(parsed);
                    else AppendStderr("stdout: " + line);
                    Signal();
                }
            }
            // A process that exits writes its last stderr lines too: read them before reporting the exit.
            await Task.WhenAny(stderrDrained, Task.Delay(TimeSpan.FromSeconds(2))).ConfigureAwait(false);
            lock (_gate) { _stdoutEnded = true; Signal(); }
        });
    }

    private void AppendStderr(string line)
    {
        // PEER_STDERR_LOG=/path keeps every fixture's whole stderr (the tail in failure messages is short).
        if (Environment.GetEnvironmentVariable("PEER_STDERR_LOG") is { Length: > 0 } log) File.AppendAllText(log, $"{Name}: {line}{Environment.NewLine}");
        _stderrTail.AppendLine(line);
        if (_stderrTail.Length > 4000) _stderrTail.Remove(0, _stderrTail.Length - 4000);
    }

    private void Signal()
    {
        var old = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        old.TrySetResult();
    }

    public void Send(object command)
    {
        var line = JsonSerializer.Serialize(command);
        try
        {
            _process.StandardInput.WriteLine(line);
            _process.StandardInput.Flush();
        }
        catch (IOException error)
        {
            throw new FixtureFailedException($"{Name}: cannot send command (process gone: {error.Message}){Diagnostics()}");
        }
    }

    /// <summary>Waits for the next event named <paramref name="eventName"/>; earlier events of other names stay queued.</summary>
    public async Task<JsonObject> WaitForAsync(string eventName, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                var error = _pending.FirstOrDefault(e => (string?)e["ev"] == "error");
                if (error is not null)
                    throw new FixtureFailedException($"{Name} reported an error in '{error["cmd"]}': {error["message"]}{Diagnostics()}");
                var match = _pending.FirstOrDefault(e => (string?)e["ev"] == eventName);
                if (match is not null)
                {
                    _pending.Remove(match);
                    return match;
                }
                if (_stdoutEnded)
                    throw new FixtureFailedException($"{Name} exited before '{eventName}'{Diagnostics()}");
                changed = _changed.Task;
            }
            var left = timeout - deadline.Elapsed;
            if (left <= TimeSpan.Zero)
                throw new FixtureFailedException($"{Name}: no '{eventName}' within {timeout.TotalSeconds:0.#} s{Diagnostics()}");
            await Task.WhenAny(changed, Task.Delay(left)).ConfigureAwait(false);
        }
    }

    /// <summary>The last lines the fixture wrote to stderr, for failure messages about its partner.</summary>
    public string StderrTail => Diagnostics();

    private string Diagnostics()
    {
        lock (_gate)
        {
            var text = _stderrTail.ToString().Trim();
            return text.Length == 0 ? "" : $"{Environment.NewLine}--- {Name} stderr (tail) ---{Environment.NewLine}{text}";
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                try { _process.StandardInput.Close(); } catch (IOException) { }
                using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                try { await _process.WaitForExitAsync(grace.Token).ConfigureAwait(false); }
                catch (OperationCanceledException) { _process.Kill(entireProcessTree: true); }
            }
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }
}
