#Requires -Version 7.4
<#
.SYNOPSIS
    Builds, tests, documents and packages the SleapRtc module.

.DESCRIPTION
    Wraps the same dotnet commands CI runs (see README.md):
      Build    dotnet build of the module; lays it out at the repo root (bin/, en-US/) so
               `Import-Module ./SleapRtc.psd1` works.
      Test     dotnet test of the solution (hosted-engine PowerShell tests included), then the
               Pester files in tests/ when Pester 5 is installed.
      Docs     turns docs/*.md into en-US/SleapRtc.dll-Help.xml and about_SleapRtc.help.txt: with
               PlatyPS (Microsoft.PowerShell.PlatyPS) when installed, else with tools/HelpBuilder.
      Package  a versioned module folder out/SleapRtc/<version>/ ready for Publish-PSResource.

.EXAMPLE
    ./build.ps1 -Task Build, Test

.EXAMPLE
    ./build.ps1 -Task Package -Configuration Release
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Docs', 'Package')]
    [string[]] $Task = @('Build'),

    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Debug'
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$root = $PSScriptRoot

function Invoke-Dotnet {
    param([Parameter(Mandatory, ValueFromRemainingArguments)] [string[]] $Arguments)
    Write-Host "dotnet $($Arguments -join ' ')" -ForegroundColor Cyan
    & dotnet @Arguments
    if ($LASTEXITCODE -ne 0) { throw "dotnet $($Arguments[0]) failed with exit code $LASTEXITCODE." }
}

function Get-ModuleVersion {
    $props = [xml](Get-Content -Raw -LiteralPath (Join-Path $root 'Directory.Build.props'))
    $version = @($props.Project.PropertyGroup | ForEach-Object { $_.Version } | Where-Object { $_ })[0]
    if (-not $version) { throw 'Directory.Build.props has no <Version>.' }
    $version
}

function Invoke-BuildTask {
    Invoke-Dotnet build (Join-Path $root 'src/SleapRtc/SleapRtc.csproj') -c $Configuration
}

function Invoke-TestTask {
    Invoke-Dotnet test (Join-Path $root 'SleapRtc.sln') -c $Configuration
    $pester = Get-Module -ListAvailable Pester | Where-Object Version -ge '5.0.0' | Sort-Object Version -Descending | Select-Object -First 1
    if (-not $pester) {
        Write-Warning 'Pester 5 is not installed: skipping tests/*.Tests.ps1 (Install-PSResource Pester).'
        return
    }
    # A child process, so the module's assemblies never lock this session.
    $script = "Import-Module Pester -MinimumVersion 5.0.0; `$c = New-PesterConfiguration; `$c.Run.Path = '$root/tests'; `$c.Run.Exit = `$true; `$c.Output.Verbosity = 'Detailed'; Invoke-Pester -Configuration `$c"
    & ([System.Diagnostics.Process]::GetCurrentProcess().MainModule.FileName) -NoProfile -NonInteractive -Command $script
    if ($LASTEXITCODE -ne 0) { throw "Pester reported $LASTEXITCODE failed test(s)." }
}

function Invoke-DocsTask {
    $helpFolder = Join-Path $root 'en-US'
    $platyPS = Get-Module -ListAvailable Microsoft.PowerShell.PlatyPS | Sort-Object Version -Descending | Select-Object -First 1
    if ($platyPS) {
        Import-Module $platyPS
        $null = New-Item -ItemType Directory -Force -Path $helpFolder
        $pages = Measure-PlatyPSMarkdown -Path (Join-Path $root 'docs/*.md')
        $pages | Where-Object Filetype -Match 'CommandHelp' |
            Import-MarkdownCommandHelp -Path { $_.FilePath } |
            Export-MamlCommandHelp -OutputFolder $helpFolder -Force | Out-Null
        # Export-MamlCommandHelp writes <folder>/<Module>/<Module>-Help.xml; Get-Help wants <Assembly>.dll-Help.xml.
        $written = Get-ChildItem -Recurse -Path $helpFolder -Filter '*-Help.xml' | Where-Object Name -NE 'SleapRtc.dll-Help.xml' | Select-Object -First 1
        if ($written) { Move-Item -Force -LiteralPath $written.FullName -Destination (Join-Path $helpFolder 'SleapRtc.dll-Help.xml') }
        # PlatyPS v2 does not write about_ topics as help text; the bundled tool does.
        Invoke-Dotnet run --project (Join-Path $root 'tools/HelpBuilder') -c $Configuration -- --docs (Join-Path $root 'docs') --out $helpFolder --assembly SleapRtc
    }
    else {
        Write-Verbose 'PlatyPS is not installed: using tools/HelpBuilder.'
        Invoke-Dotnet run --project (Join-Path $root 'tools/HelpBuilder') -c $Configuration -- --docs (Join-Path $root 'docs') --out $helpFolder --assembly SleapRtc
    }
}

function Invoke-PackageTask {
    $version = Get-ModuleVersion
    $target = Join-Path $root "out/SleapRtc/$version"
    if (Test-Path $target) { Remove-Item -Recurse -Force $target }
    $null = New-Item -ItemType Directory -Force -Path $target
    # Allow-listed content only: what Import-Module needs, nothing from the build's scratch folders.
    Copy-Item -LiteralPath (Join-Path $root 'SleapRtc.psd1') -Destination $target
    Copy-Item -Recurse -LiteralPath (Join-Path $root 'bin') -Destination (Join-Path $target 'bin')
    Copy-Item -Recurse -LiteralPath (Join-Path $root 'en-US') -Destination (Join-Path $target 'en-US')
    Get-ChildItem -Recurse -Path (Join-Path $target 'bin') -Filter '*.pdb' | Remove-Item -Force
    foreach ($required in 'SleapRtc.psd1', 'bin/SleapRtc.dll', 'bin/SleapRtc.Model.dll', 'bin/SleapRtc.Loader.dll', 'bin/deps', 'bin/desktop', 'en-US/SleapRtc.dll-Help.xml', 'en-US/about_SleapRtc.help.txt') {
        if (-not (Test-Path (Join-Path $target $required))) { throw "The package lacks $required; run the Build task first." }
    }
    $manifest = Test-ModuleManifest -Path (Join-Path $target 'SleapRtc.psd1')
    if ($manifest.Version.ToString() -ne $version) { throw "Manifest version $($manifest.Version) differs from Directory.Build.props ($version)." }
    Write-Host "Module folder ready for Publish-PSResource: $target" -ForegroundColor Green
    Get-Item $target
}

foreach ($name in $Task) {
    switch ($name) {
        'Build' { Invoke-BuildTask }
        'Test' { Invoke-TestTask }
        'Docs' { Invoke-DocsTask }
        'Package' { if ($Task -notcontains 'Build') { Invoke-BuildTask }; Invoke-PackageTask }
    }
}
