using System.Management.Automation;
using SleapRtc.PowerShell.Completion;
using SleapRtc.Protocol;
using SleapRtc.PowerShell.Infrastructure;

namespace SleapRtc.PowerShell.Commands;

/// <summary>Encodes room credentials and a worker peer id as the classic session string.</summary>
[Cmdlet(VerbsData.ConvertTo, "SleapSessionString", HelpUri = ModuleLinks.Docs + "ConvertTo-SleapSessionString.md")]
[OutputType(typeof(string))]
public sealed class ConvertToSleapSessionStringCommand : PSCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(RoomIdCompleter))]
    public string RoomId { get; set; } = "";

    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string Token { get; set; } = "";

    [Parameter(Mandatory = true, Position = 2, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [Alias("WorkerId")]
    public string PeerId { get; set; } = "";

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(ServerCompleter))]
    [ServerList]
    public string? Server { get; set; }

    protected override void ProcessRecord() =>
        WriteObject(SessionString.Encode(RoomId, Token, PeerId, string.IsNullOrWhiteSpace(Server) ? null : Server));
}
