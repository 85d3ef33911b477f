using System.Management.Automation;
using System.Management.Automation.Runspaces;
using SleapRtc.PowerShell.Infrastructure;
using SleapRtc.PowerShell.Loading;

namespace SleapRtc.PowerShell;

/// <summary>
/// Import makes sure the private dependency loading is in place (the module initializer normally did it already);
/// Remove-Module stops the servers and workers this session started, so no port stays bound.
/// </summary>
/// <remarks>
/// PowerShell reflects over the public types of this assembly before any of its code runs, so public types here
/// must never name a library type in their base types, interfaces or parameters: that would load the library
/// into the default context before the resolver exists. Library types stay in internal classes and method bodies.
/// </remarks>
public sealed class ModuleLifetime : IModuleAssemblyInitializer, IModuleAssemblyCleanup
{
    public void OnImport() => DependencyLoader.EnsureSupportedRuntime();

    public void OnRemove(PSModuleInfo psModuleInfo) => SessionRegistry.Find(Runspace.DefaultRunspace)?.StopAll();
}
