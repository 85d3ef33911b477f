namespace SleapRtc.PowerShell.Infrastructure;

/// <summary>
/// Where the module lives online: Get-Help -Online opens <see cref="Docs"/> + the cmdlet's page (the same markdown
/// pages under docs/ that the MAML help is built from). SleapRtc.psd1 names the same repository as ProjectUri.
/// </summary>
internal static class ModuleLinks
{
    public const string Project = "https://github.com/sleap-rtc/SleapRtc";
    public const string Docs = Project + "/blob/main/docs/";
}
