using System.Management.Automation;
using SleapRtc.PowerShell.Completion;
using SleapRtc.PowerShell.Infrastructure;

namespace SleapRtc.PowerShell.Commands;

/// <summary>Lists the signaling servers running in this session.</summary>
[Cmdlet(VerbsCommon.Get, "SleapSignalingServer", HelpUri = ModuleLinks.Docs + "Get-SleapSignalingServer.md")]
[OutputType(typeof(SignalingServer))]
public sealed class GetSleapSignalingServerCommand : PSCmdlet
{
    [Parameter(Position = 0)]
    [ValidateRange(1, 65535)]
    [ArgumentCompleter(typeof(PortCompleter))]
    public int[]? Port { get; set; }

    protected override void EndProcessing()
    {
        foreach (var server in RunningServer.OfThisSession())
        {
            if (Port is null || Port.Contains(server.Port)) WriteObject(server.ToModel());
        }
    }
}
