//! The widget's words in English, French and German, chosen by the tag's locale or the browser's.
//!
//! Plain `&'static str` tables and `{name}` placeholders filled by [`fill`]: no formatting
//! machinery ends up in the Wasm.
use superpayment_core::Locale;

/// Every sentence the widget shows or announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Text {
    /// The first button: `{amount}`.
    PayWithVoucher,
    /// The pay button of the form: `{amount}`.
    Pay,
    /// One-click button for one remembered voucher: `{amount}`, `{last4}`.
    PaySaved,
    /// One-click button for several remembered vouchers: `{amount}`, `{count}`.
    PaySavedMany,
    /// Under the one-click button: `{balance}`.
    SavedBalance,
    /// A remembered voucher shown in the form: `{last4}`, `{balance}`.
    SavedEntry,
    /// Label of the first code field.
    CodeLabel,
    /// Label of further code fields: `{n}`.
    CodeLabelN,
    /// Help under an empty field.
    CodeHint,
    /// The check symbol does not match.
    CodeTypo,
    /// A character that never appears in codes: `{symbol}`.
    CodeBadSymbol,
    /// The same code twice.
    CodeDuplicate,
    /// Label of the PIN field of a voucher that needs one.
    PinLabel,
    /// Help under a PIN field not yet complete (also the `pin_required` decline).
    PinHint,
    /// The API said `pin_invalid`: the code is kept, the PIN cleared.
    PinInvalid,
    /// Waiting for `/api/vouchers/check`.
    Checking,
    /// The code is good: `{balance}`.
    Balance,
    /// Sum still missing: `{amount}`.
    StillToPay,
    /// Adds a code field.
    AddVoucher,
    /// Removes a code field: `{n}`.
    RemoveVoucher,
    /// The opt-in for one-click payments.
    Remember,
    /// Pay button while paying.
    Paying,
    /// Success headline: `{amount}`.
    Paid,
    /// Success headline of a manual-capture tag (`data-capture="manual"`): the amount is
    /// held for the shop, not yet taken: `{amount}`.
    Authorized,
    /// What is left on a voucher after paying: `{last4}`, `{balance}`.
    Remaining,
    /// The order was paid before (409).
    AlreadyPaid,
    /// Pays with something else than the remembered vouchers.
    UseAnother,
    /// Revokes the remembered vouchers.
    Forget,
    /// After forgetting.
    Forgotten,
    /// Retry button.
    Retry,
    /// Re-run a balance check.
    CheckAgain,
    /// No connection.
    Offline,
    /// A request failed in transit.
    NetworkError,
    /// 5xx: `{reference}`.
    ServerError,
    /// 429: `{seconds}`.
    RateLimited,
    /// Tag or key problems the shopper cannot fix.
    NotSetUp,
    /// Signature missing or wrong.
    AmountNotVerified,
    /// 402 insufficient balance over all vouchers.
    DeclinedInsufficient,
    /// The uniform decline (`voucher_declined`): the code is unknown, expired or blocked,
    /// which the server does not tell a page apart.
    DeclinedUnknown,
    /// Voucher in another currency.
    DeclinedCurrency,
    /// Not accepted by this shop.
    DeclinedNotAccepted,
    /// Order below the voucher's minimum.
    DeclinedMinimum,
    /// Single-use voucher used already.
    DeclinedUsed,
    /// A voucher with nothing left.
    DeclinedEmpty,
    /// A remembered voucher that no longer works.
    DeclinedToken,
    /// Small print under the form.
    SecuredBy,
    /// The form's accessible name.
    FormLabel,
}

/// The sentence for `text` in `locale`, with `{placeholders}` still in it.
pub fn t(locale: Locale, text: Text) -> &'static str {
    use Text::*;
    match locale {
        Locale::En => match text {
            PayWithVoucher => "Pay {amount} with a voucher",
            Pay => "Pay {amount}",
            PaySaved => "Pay {amount} with voucher ••••{last4}",
            PaySavedMany => "Pay {amount} with your {count} saved vouchers",
            SavedBalance => "Balance {balance}",
            SavedEntry => "Saved voucher ••••{last4}, balance {balance}",
            CodeLabel => "Voucher code",
            CodeLabelN => "Voucher code {n}",
            CodeHint => "16 characters, as printed on your voucher",
            CodeTypo => "This code contains a typo. Please check each character.",
            CodeBadSymbol => "“{symbol}” never appears in voucher codes.",
            CodeDuplicate => "This voucher is already in the list.",
            PinLabel => "PIN",
            PinHint => "This voucher needs its 6-digit PIN.",
            PinInvalid => "Wrong PIN. Please enter it again.",
            Checking => "Checking balance…",
            Balance => "Balance {balance}",
            StillToPay => "Still to pay: {amount}. Add another voucher.",
            AddVoucher => "Add another voucher",
            RemoveVoucher => "Remove voucher {n}",
            Remember => "Remember my voucher on this device for one-click payments",
            Paying => "Paying…",
            Paid => "Paid {amount}. Thank you!",
            Authorized => "{amount} reserved for this order. Thank you!",
            Remaining => "Left on voucher ••••{last4}: {balance}",
            AlreadyPaid => "This order has already been paid.",
            UseAnother => "Use another voucher",
            Forget => "Forget saved voucher",
            Forgotten => "The saved voucher was removed from this device.",
            Retry => "Try again",
            CheckAgain => "Check again",
            Offline => "You seem to be offline. Check your connection, then try again.",
            NetworkError => "The connection was interrupted. Please try again.",
            ServerError => "Something went wrong on our side. Please try again. Reference: {reference}",
            RateLimited => "Too many attempts. Please wait {seconds} seconds, then try again.",
            NotSetUp => "This checkout is not set up correctly. Please contact the shop.",
            AmountNotVerified => "The amount of this order could not be verified. Please go back to the shop and try again.",
            DeclinedInsufficient => "The balance does not cover the amount. Add another voucher.",
            DeclinedUnknown => "This voucher cannot be used.",
            DeclinedCurrency => "This voucher is in another currency.",
            DeclinedNotAccepted => "This voucher is not accepted by this shop.",
            DeclinedMinimum => "The order is below this voucher's minimum amount.",
            DeclinedUsed => "This single-use voucher has already been used.",
            DeclinedEmpty => "This voucher has no balance left.",
            DeclinedToken => "The saved voucher is no longer available. Please enter a code.",
            SecuredBy => "Secured by SuperPayment. Your code never reaches the shop.",
            FormLabel => "Pay with a voucher",
        },
        Locale::Fr => match text {
            PayWithVoucher => "Payer {amount} avec un bon d’achat",
            Pay => "Payer {amount}",
            PaySaved => "Payer {amount} avec le bon ••••{last4}",
            PaySavedMany => "Payer {amount} avec vos {count} bons enregistrés",
            SavedBalance => "Solde {balance}",
            SavedEntry => "Bon enregistré ••••{last4}, solde {balance}",
            CodeLabel => "Code du bon",
            CodeLabelN => "Code du bon {n}",
            CodeHint => "16 caractères, tels qu’imprimés sur votre bon",
            CodeTypo => "Ce code contient une faute de frappe. Vérifiez chaque caractère.",
            CodeBadSymbol => "« {symbol} » n’apparaît jamais dans un code.",
            CodeDuplicate => "Ce bon figure déjà dans la liste.",
            PinLabel => "Code PIN",
            PinHint => "Ce bon demande son code PIN à 6 chiffres.",
            PinInvalid => "Code PIN incorrect. Saisissez-le à nouveau.",
            Checking => "Vérification du solde…",
            Balance => "Solde {balance}",
            StillToPay => "Reste à payer : {amount}. Ajoutez un autre bon.",
            AddVoucher => "Ajouter un autre bon",
            RemoveVoucher => "Retirer le bon {n}",
            Remember => "Mémoriser mon bon sur cet appareil pour payer en un clic",
            Paying => "Paiement en cours…",
            Paid => "{amount} payés. Merci !",
            Authorized => "{amount} réservés pour cette commande. Merci !",
            Remaining => "Reste sur le bon ••••{last4} : {balance}",
            AlreadyPaid => "Cette commande a déjà été payée.",
            UseAnother => "Utiliser un autre bon",
            Forget => "Oublier le bon enregistré",
            Forgotten => "Le bon enregistré a été retiré de cet appareil.",
            Retry => "Réessayer",
            CheckAgain => "Vérifier à nouveau",
            Offline => "Vous semblez hors ligne. Vérifiez votre connexion, puis réessayez.",
            NetworkError => "La connexion a été interrompue. Veuillez réessayer.",
            ServerError => "Un problème est survenu de notre côté. Veuillez réessayer. Référence : {reference}",
            RateLimited => "Trop de tentatives. Patientez {seconds} secondes, puis réessayez.",
            NotSetUp => "Ce paiement n’est pas configuré correctement. Veuillez contacter la boutique.",
            AmountNotVerified => "Le montant de cette commande n’a pas pu être vérifié. Retournez sur la boutique et réessayez.",
            DeclinedInsufficient => "Le solde ne couvre pas le montant. Ajoutez un autre bon.",
            DeclinedUnknown => "Ce bon ne peut pas être utilisé.",
            DeclinedCurrency => "Ce bon est dans une autre devise.",
            DeclinedNotAccepted => "Ce bon n’est pas accepté par cette boutique.",
            DeclinedMinimum => "La commande est inférieure au montant minimum de ce bon.",
            DeclinedUsed => "Ce bon à usage unique a déjà été utilisé.",
            DeclinedEmpty => "Ce bon n’a plus de solde.",
            DeclinedToken => "Le bon enregistré n’est plus disponible. Veuillez saisir un code.",
            SecuredBy => "Sécurisé par SuperPayment. Votre code n’est jamais transmis à la boutique.",
            FormLabel => "Payer avec un bon d’achat",
        },
        Locale::De => match text {
            PayWithVoucher => "{amount} mit Gutschein bezahlen",
            Pay => "{amount} bezahlen",
            PaySaved => "{amount} mit Gutschein ••••{last4} bezahlen",
            PaySavedMany => "{amount} mit Ihren {count} gespeicherten Gutscheinen bezahlen",
            SavedBalance => "Guthaben {balance}",
            SavedEntry => "Gespeicherter Gutschein ••••{last4}, Guthaben {balance}",
            CodeLabel => "Gutscheincode",
            CodeLabelN => "Gutscheincode {n}",
            CodeHint => "16 Zeichen, wie auf Ihrem Gutschein gedruckt",
            CodeTypo => "Dieser Code enthält einen Tippfehler. Bitte prüfen Sie jedes Zeichen.",
            CodeBadSymbol => "„{symbol}“ kommt in Gutscheincodes nie vor.",
            CodeDuplicate => "Dieser Gutschein ist bereits in der Liste.",
            PinLabel => "PIN",
            PinHint => "Dieser Gutschein braucht seine 6-stellige PIN.",
            PinInvalid => "Falsche PIN. Bitte erneut eingeben.",
            Checking => "Guthaben wird geprüft…",
            Balance => "Guthaben {balance}",
            StillToPay => "Noch zu zahlen: {amount}. Fügen Sie einen weiteren Gutschein hinzu.",
            AddVoucher => "Weiteren Gutschein hinzufügen",
            RemoveVoucher => "Gutschein {n} entfernen",
            Remember => "Gutschein auf diesem Gerät für Zahlungen mit einem Klick merken",
            Paying => "Zahlung läuft…",
            Paid => "{amount} bezahlt. Vielen Dank!",
            Authorized => "{amount} für diese Bestellung reserviert. Vielen Dank!",
            Remaining => "Restguthaben auf Gutschein ••••{last4}: {balance}",
            AlreadyPaid => "Diese Bestellung wurde bereits bezahlt.",
            UseAnother => "Anderen Gutschein verwenden",
            Forget => "Gespeicherten Gutschein vergessen",
            Forgotten => "Der gespeicherte Gutschein wurde von diesem Gerät entfernt.",
            Retry => "Erneut versuchen",
            CheckAgain => "Erneut prüfen",
            Offline => "Sie scheinen offline zu sein. Prüfen Sie Ihre Verbindung und versuchen Sie es erneut.",
            NetworkError => "Die Verbindung wurde unterbrochen. Bitte versuchen Sie es erneut.",
            ServerError => "Bei uns ist ein Fehler aufgetreten. Bitte versuchen Sie es erneut. Referenz: {reference}",
            RateLimited => "Zu viele Versuche. Bitte warten Sie {seconds} Sekunden und versuchen Sie es dann erneut.",
            NotSetUp => "Diese Zahlung ist nicht richtig eingerichtet. Bitte wenden Sie sich an den Shop.",
            AmountNotVerified => "Der Betrag dieser Bestellung konnte nicht bestätigt werden. Bitte kehren Sie zum Shop zurück und versuchen Sie es erneut.",
            DeclinedInsufficient => "Das Guthaben deckt den Betrag nicht. Fügen Sie einen weiteren Gutschein hinzu.",
            DeclinedUnknown => "Dieser Gutschein kann nicht verwendet werden.",
            DeclinedCurrency => "Dieser Gutschein lautet auf eine andere Währung.",
            DeclinedNotAccepted => "Dieser Gutschein wird in diesem Shop nicht akzeptiert.",
            DeclinedMinimum => "Die Bestellung liegt unter dem Mindestbetrag dieses Gutscheins.",
            DeclinedUsed => "Dieser Einmal-Gutschein wurde bereits verwendet.",
            DeclinedEmpty => "Dieser Gutschein hat kein Guthaben mehr.",
            DeclinedToken => "Der gespeicherte Gutschein ist nicht mehr verfügbar. Bitte geben Sie einen Code ein.",
            SecuredBy => "Geschützt durch SuperPayment. Ihr Code erreicht den Shop nie.",
            FormLabel => "Mit Gutschein bezahlen",
        },
    }
}

/// Replaces each `{name}` of `template` by its value; unknown names are left as they are.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                match values.iter().find(|(n, _)| *n == name) {
                    Some((_, value)) => out.push_str(value),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The message for a decline code of the API (`insufficient_balance` ...).
pub fn decline_text(code: &str) -> Text {
    match code {
        "insufficient_balance" => Text::DeclinedInsufficient,
        "voucher_currency_mismatch" => Text::DeclinedCurrency,
        "voucher_not_accepted" => Text::DeclinedNotAccepted,
        "minimum_order_not_met" => Text::DeclinedMinimum,
        "voucher_already_used" => Text::DeclinedUsed,
        "voucher_token_invalid" => Text::DeclinedToken,
        "pin_required" => Text::PinHint,
        "pin_invalid" => Text::PinInvalid,
        _ => Text::DeclinedUnknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_unknown_ones_kept() {
        assert_eq!(
            fill(
                "Pay {amount} with ••••{last4}",
                &[("amount", "€9.00"), ("last4", "7F3K")]
            ),
            "Pay €9.00 with ••••7F3K"
        );
        assert_eq!(fill("{x} and {", &[]), "{x} and {");
        assert_eq!(fill("no placeholders", &[("a", "b")]), "no placeholders");
    }

    #[test]
    fn every_locale_has_the_amount_in_its_buttons() {
        for locale in [Locale::En, Locale::Fr, Locale::De] {
            for text in [
                Text::PayWithVoucher,
                Text::Pay,
                Text::PaySaved,
                Text::Paid,
                Text::Authorized,
            ] {
                assert!(t(locale, text).contains("{amount}"), "{locale:?} {text:?}");
            }
        }
    }

    #[test]
    fn french_and_german_are_not_english() {
        assert_ne!(
            t(Locale::Fr, Text::CodeLabel),
            t(Locale::En, Text::CodeLabel)
        );
        assert_ne!(
            t(Locale::De, Text::CodeLabel),
            t(Locale::En, Text::CodeLabel)
        );
        assert_eq!(decline_text("voucher_already_used"), Text::DeclinedUsed);
        assert_eq!(decline_text("voucher_declined"), Text::DeclinedUnknown);
        assert_eq!(decline_text("anything_else"), Text::DeclinedUnknown);
    }
}
