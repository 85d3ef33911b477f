using System.Management.Automation;
using System.Management.Automation.Runspaces;
using SleapRtc.PowerShell.Infrastructure;

namespace SleapRtc.PowerShell;

/// <summary>Remove-Module stops the servers and workers this session started, so no port stays bound.</summary>
public sealed class ModuleLifetime : IModuleAssemblyCleanup
{
    public void OnRemove(PSModuleInfo psModuleInfo) => SessionRegistry.Find(Runspace.DefaultRunspace)?.StopAll();
}
