using System.Runtime.Loader;
using System.Text.RegularExpressions;

namespace SleapRtc.PowerShell.Tests;

public sealed class ModuleLoadingTests
{
    [Fact]
    public void Manifest_version_equals_the_one_version_in_Directory_Build_props()
    {
        var props = File.ReadAllText(Path.Combine(RepoPaths.Root, "Directory.Build.props"));
        var version = Regex.Match(props, "<Version>([^<]+)</Version>").Groups[1].Value;
        using var ps = new HostedPowerShell(importModule: false);
        var moduleVersion = ps.Run($"(Import-Module '{RepoPaths.Manifest}' -PassThru).Version.ToString()").ThrowOnError().Output.Single().BaseObject;
        Assert.Equal(version, moduleVersion);
    }

    [Fact]
    public void Import_exports_exactly_the_manifest_cmdlets_and_nothing_else()
    {
        using var ps = new HostedPowerShell();
        var commands = ps.Run("(Get-Module SleapRtc).ExportedCommands.Keys | ForEach-Object { $_ }").ThrowOnError()
            .Output.Select(o => o.ToString()).OrderBy(n => n, StringComparer.Ordinal).ToList();
        Assert.Equal(ModuleCommands.All, commands);
        var functions = ps.Run("(Get-Module SleapRtc).ExportedFunctions.Count").ThrowOnError().Output.Single().BaseObject;
        Assert.Equal(0, functions);
    }

    [Fact]
    public void Libraries_load_into_the_private_context_and_public_types_into_the_default_one()
    {
        using var ps = new HostedPowerShell();
        // Touch a library type through a cmdlet so its assembly is loaded.
        ps.Run("ConvertTo-SleapSessionString -RoomId r -Token t -PeerId p").ThrowOnError();
        var assemblies = AppDomain.CurrentDomain.GetAssemblies();
        var protocol = assemblies.Single(a => a.GetName().Name == "SleapRtc.Protocol");
        Assert.Equal("SleapRtc", AssemblyLoadContext.GetLoadContext(protocol)?.Name);
        Assert.StartsWith(Path.Combine(RepoPaths.Root, "bin", "deps"), protocol.Location);

        var model = assemblies.Single(a => a.GetName().Name == "SleapRtc.Model");
        Assert.Same(AssemblyLoadContext.Default, AssemblyLoadContext.GetLoadContext(model));
        var cmdlets = assemblies.Single(a => a.GetName().Name == "SleapRtc");
        Assert.Same(AssemblyLoadContext.Default, AssemblyLoadContext.GetLoadContext(cmdlets));

        // Type literals of the public model resolve in scripts.
        var typeName = ps.Run("[SleapRtc.WorkerInfo].FullName").ThrowOnError().Output.Single().BaseObject;
        Assert.Equal("SleapRtc.WorkerInfo", typeName);
    }
}
