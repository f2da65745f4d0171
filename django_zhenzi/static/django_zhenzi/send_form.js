"use strict";
// The send form's live character count, and a guard against sending twice by double-clicking.
{
    const countLength = (text) => {
        // A JavaScript string's length counts UTF-16 code units, as Zhenzi does (an emoji is
        // two). The server turns CRLF line breaks into one character and trims the ends.
        return text.replace(/\r\n?/g, "\n").trim().length;
    };

    const setUpCounter = (field) => {
        const output = document.getElementById(field.dataset.zhenziCounter);
        const value = output && output.querySelector("[data-zhenzi-count-value]");
        if (!value) {
            return;
        }
        const limit = Number(field.dataset.zhenziLimit);
        const update = () => {
            const length = countLength(field.value);
            value.textContent = String(length);
            output.classList.toggle("zhenzi-over-limit", length > limit);
        };
        field.addEventListener("input", update);
        update();
    };

    const setUpForm = (form) => {
        form.addEventListener("submit", () => {
            for (const button of form.querySelectorAll("[type=submit]")) {
                button.disabled = true;
            }
        });
    };

    const start = () => {
        document.querySelectorAll("textarea[data-zhenzi-limit]").forEach(setUpCounter);
        document.querySelectorAll("form[data-zhenzi-send-form]").forEach(setUpForm);
    };

    if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", start);
    } else {
        start();
    }
}
