using System.Management.Automation;
using SleapRtc.PowerShell.Completion;
using SleapRtc.PowerShell.Infrastructure;

namespace SleapRtc.PowerShell.Commands;

/// <summary>Stops signaling servers started in this session: piped server objects, or by port.</summary>
[Cmdlet(VerbsLifecycle.Stop, "SleapSignalingServer", SupportsShouldProcess = true, DefaultParameterSetName = ByObjectSet, HelpUri = ModuleLinks.Docs + "Stop-SleapSignalingServer.md")]
[OutputType(typeof(SignalingServer))]
public sealed class StopSleapSignalingServerCommand : SleapCmdlet
{
    private const string ByObjectSet = "InputObject";
    private const string ByPortSet = "Port";
    /// <summary>What the stop itself may take after the drain (closing connections, the database).</summary>
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(15);

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ParameterSetName = ByObjectSet)]
    public SignalingServer[] InputObject { get; set; } = Array.Empty<SignalingServer>();

    [Parameter(Mandatory = true, ParameterSetName = ByPortSet)]
    [ValidateRange(1, 65535)]
    [ArgumentCompleter(typeof(PortCompleter))]
    public int[] Port { get; set; } = Array.Empty<int>();

    /// <summary>
    /// Seconds the peers get to move to another instance of their server list before the server closes their
    /// connections; 0 stops at once. Default: the server's -DrainTimeoutSec (30 s unless set at its start).
    /// </summary>
    [Parameter]
    [ValidateRange(0, 86400)]
    public int DrainTimeoutSec { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        var running = RunningServer.OfThisSession();
        var targets = ParameterSetName == ByPortSet
            ? Port.Select(p => (Key: (object)p, Server: running.FirstOrDefault(s => s.Port == p)))
            : InputObject.Select(o => (Key: (object)o, Server: running.FirstOrDefault(s => s.InstanceId == o.InstanceId)));

        foreach (var (key, server) in targets)
        {
            if (server is null)
            {
                WriteError(SleapErrors.Create(ErrorIds.ServerNotFound, ErrorCategory.ObjectNotFound, key,
                    $"No running signaling server of this session matches '{key}'.",
                    "List this session's servers with Get-SleapSignalingServer; servers of other sessions or processes cannot be stopped here."));
                continue;
            }
            if (!ShouldProcess(server.ToModel().Url, "Stop signaling server")) continue;

            var drain = MyInvocation.BoundParameters.ContainsKey(nameof(DrainTimeoutSec)) ? TimeSpan.FromSeconds(DrainTimeoutSec) : server.DrainTimeout;
            if (drain > TimeSpan.Zero) WriteVerbose($"Draining the server on port {server.Port}: its peers get up to {drain.TotalSeconds:F0} s to move to another instance.");
            // Ctrl+C cuts the drain short: the server then stops at once.
            RunOnBackground((_, token) => server.DrainAsync(drain, token), drain + StopTimeout);
            SessionRegistry.Current.Remove(server);
            if (PassThru) WriteObject(server.ToModel());
        }
    }
}
