"""Disabling the add-on restores Cycles, removes handlers and properties; enabling again works."""
import addon_utils
import bpy

from conftest import ADDON


def _ours(function) -> bool:
    return getattr(function, "__module__", "").startswith(ADDON)


def test_disable_restores_everything_and_enable_works_again(addon):
    import cycles
    assert _ours(cycles.CyclesRender.render) and _ours(cycles.CyclesRender.update_render_passes)
    handler_lists = [getattr(bpy.app.handlers, n) for n in ("render_init", "render_post",
                                                            "render_write", "render_complete")]
    assert any(_ours(h) for handlers in handler_lists for h in handlers)

    addon_utils.disable(ADDON)
    try:
        assert not _ours(cycles.CyclesRender.render)
        assert not _ours(cycles.CyclesRender.update_render_passes)
        assert not any(_ours(h) for handlers in handler_lists for h in handlers)
        assert not hasattr(bpy.types.Scene, "photoreal")
        assert not hasattr(bpy.types, "PHOTOREAL_OT_enhance")
    finally:
        addon_utils.enable(ADDON, default_set=True)
    assert hasattr(bpy.types.Scene, "photoreal")
    assert _ours(cycles.CyclesRender.render)
