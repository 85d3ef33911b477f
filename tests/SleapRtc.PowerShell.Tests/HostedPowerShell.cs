using System.Collections.ObjectModel;
using System.Management.Automation;
using System.Management.Automation.Runspaces;

namespace SleapRtc.PowerShell.Tests;

/// <summary>
/// One PowerShell session (runspace) with the built module imported, driven like a user would drive it:
/// script text in, output objects and every stream out, prompts answered from the test host's queue.
/// </summary>
public sealed class HostedPowerShell : IDisposable
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    public TestHost Host { get; }
    public Runspace Runspace { get; }

    /// <param name="importModule">Import the built module (most tests).</param>
    /// <param name="interactiveHost">false: no custom host, as in PowerShell.Create() or a service (prompts impossible).</param>
    /// <param name="consoleWidth">Width of the test host's console (Out-Host formats to it).</param>
    public HostedPowerShell(bool importModule = true, bool interactiveHost = true, int consoleWidth = 120)
    {
        Host = new TestHost(consoleWidth);
        var state = InitialSessionState.CreateDefault2();
        Runspace = interactiveHost ? RunspaceFactory.CreateRunspace(Host, state) : RunspaceFactory.CreateRunspace(state);
        Runspace.Open();
        if (importModule)
        {
            Run($"Import-Module '{RepoPaths.Manifest.Replace("'", "''")}' -ErrorAction Stop").ThrowOnError();
        }
    }

    /// <summary>Runs script text to completion (or throws after <paramref name="timeout"/>, stopping it first).</summary>
    public ScriptResult Run(string script, TimeSpan? timeout = null, IDictionary<string, object?>? variables = null)
    {
        using var running = Start(script, variables);
        return running.Wait(timeout ?? DefaultTimeout);
    }

    /// <summary>Starts script text without waiting, for commands that block (-Wait) or must be stopped (Ctrl+C).</summary>
    public RunningScript Start(string script, IDictionary<string, object?>? variables = null)
    {
        if (variables is not null)
        {
            foreach (var (name, value) in variables) Runspace.SessionStateProxy.SetVariable(name, value);
        }
        var ps = System.Management.Automation.PowerShell.Create();
        ps.Runspace = Runspace;
        ps.AddScript(script);
        return new RunningScript(ps);
    }

    public void Dispose()
    {
        Runspace.Dispose();
    }
}

/// <summary>A script started by <see cref="HostedPowerShell.Start"/>; its streams fill while it runs.</summary>
public sealed class RunningScript : IDisposable
{
    private readonly System.Management.Automation.PowerShell _ps;
    private readonly PSDataCollection<PSObject> _output = new();
    private readonly IAsyncResult _invocation;

    internal RunningScript(System.Management.Automation.PowerShell ps)
    {
        _ps = ps;
        _invocation = ps.BeginInvoke<PSObject, PSObject>(null, _output);
    }

    public PSDataCollection<PSObject> Output => _output;
    public PSDataStreams Streams => _ps.Streams;
    public bool IsCompleted => _invocation.IsCompleted;

    /// <summary>Waits until <paramref name="condition"/> holds (polling the live streams) or fails the test.</summary>
    public void WaitUntil(Func<RunningScript, bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition(this))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"Timed out after {timeout.TotalSeconds} s waiting for {what}.");
            if (IsCompleted && !condition(this))
                throw new InvalidOperationException($"The script ended before {what}: {Describe(Streams.Error)}");
            Thread.Sleep(20);
        }
    }

    /// <summary>Presses Ctrl+C: stops the pipeline and returns how long the stop took.</summary>
    public TimeSpan Stop(TimeSpan timeout)
    {
        var started = DateTime.UtcNow;
        var stop = Task.Run(() => _ps.Stop());
        if (!stop.Wait(timeout)) throw new TimeoutException($"The pipeline did not stop within {timeout.TotalSeconds} s.");
        return DateTime.UtcNow - started;
    }

    public ScriptResult Wait(TimeSpan timeout)
    {
        if (!_invocation.AsyncWaitHandle.WaitOne(timeout))
        {
            _ps.Stop();
            throw new TimeoutException($"The script did not finish within {timeout.TotalSeconds} s (stopped).");
        }
        Exception? terminating = null;
        try { _ps.EndInvoke(_invocation); }
        catch (RuntimeException ex) { terminating = ex; }
        return new ScriptResult(_output.ToList(), _ps.Streams, terminating);
    }

    private static string Describe(IEnumerable<ErrorRecord> errors) => string.Join("; ", errors.Select(e => e.ToString()));

    public void Dispose() => _ps.Dispose();
}

/// <summary>Everything a script produced.</summary>
public sealed class ScriptResult
{
    public ScriptResult(List<PSObject> output, PSDataStreams streams, Exception? terminatingError)
    {
        Output = output;
        Errors = streams.Error.ToList();
        Warnings = streams.Warning.Select(w => w.Message).ToList();
        Verbose = streams.Verbose.Select(v => v.Message).ToList();
        Information = streams.Information.ToList();
        Progress = streams.Progress.ToList();
        TerminatingError = terminatingError;
    }

    public List<PSObject> Output { get; }
    public List<ErrorRecord> Errors { get; }
    public List<string> Warnings { get; }
    public List<string> Verbose { get; }
    public List<InformationRecord> Information { get; }
    public List<ProgressRecord> Progress { get; }
    /// <summary>The exception that ended the script, if one did (a terminating error).</summary>
    public Exception? TerminatingError { get; }

    /// <summary>The terminating error's record, or the first non-terminating one.</summary>
    public ErrorRecord? FirstError =>
        (TerminatingError as IContainsErrorRecord)?.ErrorRecord ?? Errors.FirstOrDefault();

    public ScriptResult ThrowOnError()
    {
        if (TerminatingError is not null) throw new InvalidOperationException("Script failed: " + TerminatingError.Message, TerminatingError);
        if (Errors.Count > 0) throw new InvalidOperationException("Script wrote errors: " + string.Join("; ", Errors.Select(e => e.ToString())));
        return this;
    }

    /// <summary>The single output object's base object as T (strings, numbers, framework types).</summary>
    public T Single<T>()
    {
        ThrowOnError();
        Assert.Single(Output);
        return Assert.IsType<T>(Output[0].BaseObject);
    }

    /// <summary>The single output object, checked to be of the module type <paramref name="typeName"/>.</summary>
    public PSObject SingleOf(string typeName)
    {
        ThrowOnError();
        var only = Assert.Single(Output);
        Assert.Equal(typeName, only.BaseObject.GetType().FullName);
        return only;
    }
}

public static class PSObjectExtensions
{
    /// <summary>A property value the way a script reads it ($obj.Name), including type-file members.</summary>
    public static object? Prop(this PSObject value, string name) => value.Properties[name]?.Value;

    public static string? Text(this PSObject value, string name) => value.Properties[name]?.Value?.ToString();
}

/// <summary>Where the built module lives: the repo root, found from the test's output folder.</summary>
public static class RepoPaths
{
    public static string Root { get; } = FindRoot();
    public static string Manifest => Path.Combine(Root, "SleapRtc.psd1");
    public static string Docs => Path.Combine(Root, "docs");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "SleapRtc.psd1")) && File.Exists(Path.Combine(dir.FullName, "Directory.Build.props")))
                return dir.FullName;
        }
        throw new InvalidOperationException("Could not find the repository root (SleapRtc.psd1) above " + AppContext.BaseDirectory);
    }
}
