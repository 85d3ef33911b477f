using System.Management.Automation;
using SleapRtc.PowerShell.Infrastructure;
using SleapRtc.Protocol;

namespace SleapRtc.PowerShell.Commands;

/// <summary>Decodes a session string into its room id, token, worker peer id and (when present) server URL.</summary>
[Cmdlet(VerbsData.ConvertFrom, "SleapSessionString", HelpUri = ModuleLinks.Docs + "ConvertFrom-SleapSessionString.md")]
[OutputType(typeof(SessionInfo))]
public sealed class ConvertFromSleapSessionStringCommand : PSCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [AllowEmptyString]
    public string[] SessionString { get; set; } = Array.Empty<string>();

    protected override void ProcessRecord()
    {
        foreach (var value in SessionString)
        {
            try
            {
                WriteObject(Protocol.SessionString.Decode(value));
            }
            catch (FormatException ex)
            {
                // One bad string must not stop the rest of a piped list.
                WriteError(SleapErrors.InvalidSessionString(value, ex));
            }
        }
    }
}
