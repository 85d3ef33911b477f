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
    private readonly PipelineQueue _queue;

    public HostWorkerChooser(PipelineQueue queue) => _queue = queue;

    /// <summary>Whether a person can answer prompts: not the default host of PowerShell.Create or pwsh -NonInteractive.</summary>
    public static bool IsInteractive(PSHost host) =>
        host.Name != NonInteractiveHostName && host.UI is not null
        && !Environment.GetCommandLineArgs().Any(a => a.Equals("-NonInteractive", StringComparison.OrdinalIgnoreCase));

    public static SleapRtcException NotInteractive() => new("NoInteractiveHost", SleapRtcErrorKind.InvalidArgument,
        "Choosing a worker needs an interactive PowerShell host, and this one cannot prompt.",
        "Use -Auto (Select-SleapWorker) / -AutoSelect (Submit-SleapTraining) to pick the worker with the most GPU memory, or -WorkerId to name one.");

    public void WriteLine(string line) => _queue.Post(c => c.Host.UI.WriteLine(line));

    public string? ReadLine(string prompt, TimeSpan timeout)
    {
        var answer = _queue.InvokeOnPipeline(c =>
        {
            c.Host.UI.Write(prompt + ": ");
            try
            {
                return c.Host.Name == "ConsoleHost" ? ReadLineWithTimeout(c.Host.UI, timeout) : c.Host.UI.ReadLine();
            }
            catch (Exception ex) when (ex is PSInvalidOperationException or NotImplementedException or NotSupportedException or HostException)
            {
                throw NotInteractive();
            }
        });
        try
        {
            // The pipeline thread answers; the extra minute covers a host whose ReadLine cannot time out by itself.
            return answer.Wait(timeout + TimeSpan.FromMinutes(1)) ? answer.Result : null;
        }
        catch (AggregateException ex) when (ex.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(ex.InnerException).Throw();
            throw;
        }
    }

    /// <summary>A console line editor that gives up after <paramref name="timeout"/> (null), for the 5-minute selection limit.</summary>
    private static string? ReadLineWithTimeout(PSHostUserInterface ui, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        var line = new StringBuilder();
        while (DateTime.UtcNow < deadline)
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
