using System.Management.Automation;
using System.Management.Automation.Host;
using System.Text;
using SleapRtc.Client.Discovery;
using SleapRtc.Protocol.Jobs;

namespace SleapRtc.PowerShell.Infrastructure;

/// <summary>
/// Interactive worker selection through the PowerShell host ($Host.UI), never the console directly, so any host
/// (and the tests' host) can answer. Runs on a background thread; every host call is marshalled to the pipeline.
/// </summary>
internal sealed class HostWorkerChooser : IWorkerChooser
{
    private const string NonInteractiveHostName = "Default Host";
    private const string ConsoleHostName = "ConsoleHost";
    private readonly PipelineQueue _queue;
    private readonly CancellationToken _stop;

    /// <param name="stop">Ctrl+C: ends a prompt that is waiting for keys.</param>
    public HostWorkerChooser(PipelineQueue queue, CancellationToken stop)
    {
        _queue = queue;
        _stop = stop;
    }

    /// <summary>
    /// Whether a person can answer prompts: not the default host of PowerShell.Create, not pwsh -NonInteractive, and
    /// not the console host with standard input redirected (pwsh -File script.ps1 &lt;/dev/null, scheduled tasks),
    /// where nobody types and the console cannot even look for keys.
    /// </summary>
    public static bool IsInteractive(PSHost host) =>
        host.Name != NonInteractiveHostName && host.UI is not null
        && !(host.Name == ConsoleHostName && Console.IsInputRedirected)
        && !Environment.GetCommandLineArgs().Any(a => a.Equals("-NonInteractive", StringComparison.OrdinalIgnoreCase));

    public static SleapRtcException NotInteractive() => new("NoInteractiveHost", SleapRtcErrorKind.InvalidArgument,
        "Choosing a worker needs an interactive PowerShell host, and this one cannot prompt.",
        "Use -Auto (Select-SleapWorker) / -AutoSelect (Submit-SleapTraining) to pick the worker with the most GPU memory, or -WorkerId to name one.");

    public void WriteLine(string line) => _queue.Post(c => c.Host.UI.WriteLine(line));

    public async Task<string?> ReadLineAsync(string prompt, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var stop = _stop;
        var answer = _queue.InvokeOnPipeline(c =>
        {
            c.Host.UI.Write(prompt + ": ");
            try
            {
                return c.Host.Name == ConsoleHostName ? ReadLineWithTimeout(c.Host.UI, timeout, stop) : c.Host.UI.ReadLine();
            }
            // InvalidOperationException: the console cannot read keys (input redirected after the check, no console).
            catch (Exception ex) when (ex is InvalidOperationException or NotImplementedException or NotSupportedException or HostException)
            {
                throw NotInteractive();
            }
        });
        // The pipeline thread answers; the extra minute covers a host whose ReadLine cannot time out by itself.
        var limit = timeout + TimeSpan.FromMinutes(1);
        var finished = await Task.WhenAny(answer, Task.Delay(limit, cancellationToken)).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        return finished == answer ? await answer.ConfigureAwait(false) : null;
    }

    /// <summary>
    /// A console line editor that gives up after <paramref name="timeout"/> (null), for the 5-minute selection limit,
    /// and at once on Ctrl+C (which PowerShell reports through the stop token, not as a key).
    /// </summary>
    private static string? ReadLineWithTimeout(PSHostUserInterface ui, TimeSpan timeout, CancellationToken stop)
    {
        var deadline = DateTime.UtcNow + timeout;
        var line = new StringBuilder();
        while (DateTime.UtcNow < deadline && !stop.IsCancellationRequested)
        {
            if (!ui.RawUI.KeyAvailable)
            {
                Thread.Sleep(25);
                continue;
            }
            var key = ui.RawUI.ReadKey(ReadKeyOptions.NoEcho | ReadKeyOptions.IncludeKeyDown);
            if (!key.KeyDown) continue;
            switch (key.VirtualKeyCode)
            {
                case 13: // Enter
                    ui.WriteLine();
                    return line.ToString();
                case 8: // Backspace
                    if (line.Length > 0)
                    {
                        line.Length--;
                        ui.Write("\b \b");
                    }
                    break;
                default:
                    if (!char.IsControl(key.Character))
                    {
                        line.Append(key.Character);
                        ui.Write(key.Character.ToString());
                    }
                    break;
            }
        }
        ui.WriteLine();
        return null;
    }
}
